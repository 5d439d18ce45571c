/**
 * The enrolment-only session of a help-desk reset, after its link and the password
 * (recover-two-step.ts): the one thing it can do is add a new possession method (an authenticator app, a
 * phone, a passkey, a security key, mobile app prompts) and then show a new set of recovery codes.
 *
 * It is not an account session and not a sign-in: no oidc-provider session, no account page, no token.
 * It is a random id in a signed cookie scoped to /recover-two-step, stored hashed in one_time_codes
 * (`two_step_enrol`, ENROL_TTL_SECONDS, a newer one kills it), and its enrolments are pending steps bound
 * to it. It is spent (one conditional write) when the new method exists, and only the request that spends
 * it makes the recovery codes; after that the person signs in like anyone, with the password and the new
 * method.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { notify } from '../account/notify.ts';
import { backupFactor, factorContext, factorFor, isPossession, isStepKind, STEP_KINDS } from '../factors/index.ts';
import { runPending } from '../factors/pending.ts';
import { isStep, type Factor, type Pending, type StepKind } from '../factors/types.ts';
import { checkedForm } from '../http/csrf.ts';
import { pageRenderer } from '../http/page.ts';
import { requestMeta } from '../http/request-meta.ts';
import { signedCookies } from '../http/signed-cookies.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { hereOf } from '../security/device.ts';
import { hashToken } from '../store/one-time-codes.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { User } from '../store/users.ts';

export const RECOVER_PATH = '/recover-two-step';
/** How long the enrolment-only session lasts after the password. */
export const ENROL_TTL_SECONDS = 30 * 60;
const COOKIE = 'lk.recover';

type EnrolContext = Context & { state: { form: Record<string, string>; user: User; enrol: { token: string; binding: string } } };

const asPending = (row: PendingRow): Pending => ({ ...row, userId: row.userId!, kind: row.kind as StepKind });
const cookies = (deps: Pick<InteractionDeps, 'config'>) => signedCookies(deps.config, RECOVER_PATH);

/** The methods a reset can end with: possession methods added with a form, whose prerequisite the user has. */
async function offered(deps: InteractionDeps, user: User): Promise<StepKind[]> {
  const mine = await deps.store.authenticators.listForUser(user.id);
  return STEP_KINDS.filter((kind) => {
    const factor = factorFor(kind) as Factor;
    return isPossession(factor) && factor.enrolment === 'form' && (!factor.needs || mine.some((a) => a.kind === factor.needs));
  });
}

/** After the right password: a new enrolment-only session for this browser, and on to choosing a method. */
export async function beginEnrolSession(deps: InteractionDeps, ctx: Context, user: User): Promise<void> {
  const token = await deps.store.codes.issue('two_step_enrol', user.id, ENROL_TTL_SECONDS);
  cookies(deps).set(ctx, COOKIE, token, ENROL_TTL_SECONDS);
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 303;
  ctx.redirect(`${deps.config.issuer}${RECOVER_PATH}/methods`);
}

export function recoverEnrolRoutes(deps: InteractionDeps): Router {
  const router = new Router({ prefix: RECOVER_PATH });
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;
  const backup = backupFactor();
  const over = (ctx: Context) => {
    cookies(deps).clear(ctx, COOKIE);
    page(ctx, 'mail-flows/recover-two-step-invalid.njk', { sessionOver: true }, 410);
  };

  /** The live enrolment-only session and its active user, or the page that says it is over. */
  async function enrolling(ctx: EnrolContext, next: Next) {
    ctx.set('Cache-Control', 'no-store');
    const token = cookies(deps).get(ctx, COOKIE);
    const live = token ? await deps.store.codes.peek('two_step_enrol', token) : undefined;
    const user = live?.userId ? await deps.store.users.findById(live.userId) : undefined;
    if (!token || !user || user.status !== 'active') return over(ctx);
    ctx.state.user = user;
    ctx.state.enrol = { token, binding: `recover:${hashToken(token)}` };
    await next();
  }

  /** The kind in the path, when this session may add it. */
  async function kindOf(ctx: EnrolContext): Promise<StepKind | undefined> {
    const kind = ctx.params.kind;
    return isStepKind(kind) && (await offered(deps, ctx.state.user)).includes(kind) ? kind : undefined;
  }

  const renderAdd = async (ctx: EnrolContext, kind: StepKind, pending: Pending, extra: { error?: string; values?: Record<string, string> } = {}, status = 200) => {
    const view = await factorFor(kind).view(pending as never, ctx.state.user, factorContext(deps));
    page(ctx, 'mail-flows/recover-two-step-add.njk', {
      kind, view, pendingId: pending.id, action: `${RECOVER_PATH}/add/${kind}`, error: extra.error, values: extra.values ?? {},
    }, status);
  };

  async function begin(ctx: EnrolContext, kind: StepKind, extra: { error?: string } = {}, status = 200) {
    const step = await (factorFor(kind) as Factor).enroll.begin(ctx.state.user, factorContext(deps));
    const pending = asPending(await deps.store.pending.put({ ...step, binding: ctx.state.enrol.binding, userId: ctx.state.user.id }));
    await renderAdd(ctx, kind, pending, extra, status);
  }

  router.get('/methods', enrolling, async (ctx: EnrolContext) => {
    page(ctx, 'mail-flows/recover-two-step-methods.njk', { email: ctx.state.user.email, kinds: await offered(deps, ctx.state.user) });
  });

  router.get('/add/:kind', enrolling, async (ctx: EnrolContext) => {
    const kind = await kindOf(ctx);
    if (!kind) return page(ctx, 'mail-flows/recover-two-step-methods.njk', { email: ctx.state.user.email, kinds: await offered(deps, ctx.state.user) }, 404);
    await begin(ctx, kind);
  });

  // A phone pairing's page asks how far the pairing got (the factor's word for it).
  router.get('/add/:kind/status', enrolling, async (ctx: EnrolContext) => {
    const kind = await kindOf(ctx);
    const factor = kind ? (factorFor(kind) as Factor) : undefined;
    const id = typeof ctx.query.pending === 'string' && /^[A-Za-z0-9_-]{32}$/.test(ctx.query.pending) ? ctx.query.pending : undefined;
    const row = factor?.enrolStatus && id ? await deps.store.pending.find(id, ctx.state.enrol.binding) : undefined;
    const { user } = ctx.state;
    ctx.body = row && row.kind === kind && row.userId === user.id ? await factor!.enrolStatus!(asPending(row), user, factorContext(deps)) : { state: 'expired' };
  });

  router.post('/add/:kind', checked, enrolling, async (ctx: EnrolContext) => {
    const kind = await kindOf(ctx);
    const { user, form, enrol } = ctx.state;
    if (!kind) return page(ctx, 'mail-flows/recover-two-step-methods.njk', { email: user.email, kinds: await offered(deps, user) }, 404);
    const factor = factorFor(kind) as Factor;
    // A passkey added here remembers this device, as on the account page.
    const fctx = { ...factorContext(deps), here: hereOf(deps.config, ctx) };
    const outcome = await runPending(deps.store.pending, {
      id: form.pending, binding: enrol.binding, keepWhenUnavailable: true, challengeOnce: () => factor.challengeOnce,
      accept: (row) => row.kind === kind && row.userId === user.id,
      check: async (row) => factor.enroll.finish(asPending(row), factor.parse(form), user, fctx),
    });
    if (outcome.kind === 'gone') return begin(ctx, kind, { error: t('account.twoStep.expired') }, 400);
    if (outcome.kind === 'throttled') throw outcome.error;
    if (outcome.kind === 'refused') {
      const { error: err, back } = outcome;
      if (!back) return begin(ctx, kind, { error: err.counts && !factor.challengeOnce ? t('account.twoStep.tooManyWrong') : t(err.messageKey, err.vars) }, 400);
      return renderAdd(ctx, kind, asPending(back), { error: t(err.messageKey, err.vars), values: { label: (form.label ?? '').slice(0, 200), phone: (form.phone ?? '').slice(0, 200) } }, 400);
    }
    const result = outcome.value;
    if (isStep(result)) {
      const next = asPending(await deps.store.pending.put({ ...result, binding: enrol.binding, userId: user.id }));
      return renderAdd(ctx, kind, next);
    }
    const meta = requestMeta(ctx);
    await deps.events.record({ type: 'two_step.added', userId: user.id, ...meta, details: { kind, label: result.label, via: 'two_step_reset' } });
    // The session ends with the method it was for: only the request that spends it makes the codes.
    const spent = await deps.store.codes.spend('two_step_enrol', enrol.token);
    await deps.store.pending.dropFor(enrol.binding);
    cookies(deps).clear(ctx, COOKIE);
    if (!spent) return over(ctx);
    // The recovery is done: sign-ins may complete again (with the new method).
    await deps.store.users.setRecoveryPending(user.id, false);
    // New recovery codes, shown in this response only (the old set, if any, dies).
    const step = await backup.enroll.begin(user, fctx);
    const codes: Pending = { ...step, id: 'generated', userId: user.id, attemptsLeft: 1, expiresAt: Date.now() + step.ttlSeconds * 1000 };
    await backup.enroll.finish(codes, { confirm: 'yes' }, user, fctx);
    await deps.events.record({ type: 'recovery_codes.generated', userId: user.id, ...meta, details: { count: deps.config.twoStep.recoveryCodes.count, via: 'two_step_reset' } });
    await deps.events.record({ type: 'two_step_reset.completed', userId: user.id, ...meta, details: { kind } });
    await notify(deps, user, 'two-step-changed', () => ({ change: t('mail.two-step-changed.recovered', { method: t(`factors.${kind}.name`), label: result.label }) }));
    page(ctx, 'mail-flows/recover-two-step-done.njk', { view: await backup.view(codes, user, fctx), method: t(`factors.${kind}.name`) });
  });
  return router;
}
