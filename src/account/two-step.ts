/**
 * Two-step verification on the account page ("Password & security"): add a method (the security question
 * first: every other method needs it), rename and remove methods, get new recovery codes. Every change
 * needs a recent sign-in at the highest level the user can reach (recent-auth.ts, in the route table) and
 * mails the user. An enrolment in progress is a pending step bound to this account session; a method
 * exists only once it is proved (a TOTP code, the SMS code). The last possession method cannot be removed
 * while the user's preference or an app they use needs one.
 */
import { z } from 'zod';
import { backupFactor, factorContext, factorFor, isPossession, isStepKind, needing } from '../factors/index.ts';
import { isStep, type Authenticator, type Factor, type Pending, type Step, type StepKind } from '../factors/types.ts';
import { LABEL_MAX } from '../factors/common.ts';
import { runPending } from '../factors/pending.ts';
import { outOfUseAmong, removeMethods, takesLastPossession } from '../factors/removal.ts';
import { hereOf } from '../security/device.ts';
import { ACR, rank } from '../security/level.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { User } from '../store/users.ts';
import { connectedApps } from './apps.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { webauthn } from '../factors/webauthn.ts';
import { PRINTABLE, tidy } from '../text.ts';
import { notify } from './notify.ts';
import { countAsRecentSignIn } from './recent-auth.ts';
import { doneRedirect, renderPage } from './page.ts';
import { missingPrerequisite, renderSecurityPage } from './security-page.ts';

const binding = (ctx: AccountContext) => `account:${ctx.state.account.idHash}`;
const asPending = (row: PendingRow): Pending => ({ ...row, userId: row.userId!, kind: row.kind as StepKind });
/** Recovery codes: the method that backs up the possession methods. */
const backup = backupFactor();

/** The form values an enrolment page may show back after an error (never an answer or a code). */
const ECHO = ['question', 'customQuestion', 'label', 'phone'] as const;
const echoValues = (form: Record<string, string>) => Object.fromEntries(ECHO.map((k) => [k, (form[k] ?? '').slice(0, 200)]));

const idForm = z.object({ id: z.uuid() });
const renameForm = z.object({
  id: z.uuid(),
  label: z.string().transform(tidy).pipe(z.string().min(1).max(LABEL_MAX).regex(PRINTABLE)),
});

const methodName = (deps: AccountDeps, kind: string) => deps.render.t(`factors.${kind}.name`);

function kindParam(ctx: AccountContext): StepKind | undefined {
  const kind = ctx.params.kind;
  return isStepKind(kind) ? kind : undefined;
}

function renderEnrol(deps: AccountDeps, ctx: AccountContext, vars: { kind: StepKind; pending: Pending; view: Record<string, unknown>; error?: string; values?: Record<string, string> }, status = 200) {
  renderPage(deps, ctx, 'account/two-step-add.njk', 'security', {
    kind: vars.kind, view: vars.view, pendingId: vars.pending.id, action: `/account/two-step/${vars.kind}`,
    error: vars.error, values: vars.values ?? {}, replacing: false,
  }, status);
}

/** Starts an enrolment (a pending step for this account session) and shows its first page. */
async function begin(deps: AccountDeps, ctx: AccountContext, kind: StepKind, extra: { error?: string; values?: Record<string, string> } = {}, status = 200) {
  const { user } = ctx.state;
  const factor = factorFor(kind) as Factor;
  const fctx = factorContext(deps);
  const step = await factor.enroll.begin(user, fctx);
  const pending = asPending(await deps.store.pending.put({ ...step, binding: binding(ctx), userId: user.id }));
  renderEnrol(deps, ctx, { kind, pending, view: await factor.view(pending, user, fctx), ...extra }, status);
}

/** Refuses a method whose prerequisite is missing; the reason is shown on the page. */
async function prerequisite(deps: AccountDeps, user: User, factor: Factor): Promise<string | undefined> {
  return factor.needs ? missingPrerequisite(deps, factor, await deps.store.authenticators.listForUser(user.id)) : undefined;
}

/** A change refused: "Password & security" with the reason. */
function refuse(deps: AccountDeps, ctx: AccountContext, error: string, status = 400) {
  return renderSecurityPage(deps, ctx, { error }, status);
}

/** GET /account/two-step/:kind: the first page of adding (or changing) a method. */
export function showEnrol(deps: AccountDeps) {
  return async function enrolPage(ctx: AccountContext) {
    const kind = kindParam(ctx);
    if (!kind) return refuse(deps, ctx, deps.render.t('account.twoStep.unknownMethod'), 404);
    const blocked = await prerequisite(deps, ctx.state.user, factorFor(kind) as Factor);
    if (blocked) return refuse(deps, ctx, blocked);
    if (factorFor(kind).enrolment === 'generated') {
      return renderPage(deps, ctx, 'account/recovery-codes.njk', 'security', { left: await deps.store.codes.countLive('recovery_code', ctx.state.user.id) });
    }
    await begin(deps, ctx, kind);
  };
}

/**
 * GET /account/two-step/:kind/status?pending=…: how far this account session's enrolment step got on another
 * channel (a phone pairing), as JSON `{state}`: the factor's word for it, or `expired` when the step is gone,
 * past its time, or not this session's.
 */
export function enrolStatus(deps: AccountDeps) {
  return async function enrolStepStatus(ctx: AccountContext) {
    const kind = kindParam(ctx);
    const factor = kind ? (factorFor(kind) as Factor) : undefined;
    ctx.set('Cache-Control', 'no-store');
    if (!factor?.enrolStatus) {
      ctx.status = 404;
      ctx.body = { error: 'not_found' };
      return;
    }
    const id = typeof ctx.query.pending === 'string' && /^[A-Za-z0-9_-]{32}$/.test(ctx.query.pending) ? ctx.query.pending : undefined;
    const row = id ? await deps.store.pending.find(id, binding(ctx)) : undefined;
    const { user } = ctx.state;
    ctx.body = row && row.kind === kind && row.userId === user.id ? await factor.enrolStatus(asPending(row), user, factorContext(deps)) : { state: 'expired' };
  };
}

/** Makes a new set of recovery codes (the old set dies) and shows it, once. */
async function generateRecoveryCodes(deps: AccountDeps, ctx: AccountContext, after?: string): Promise<void> {
  const { user } = ctx.state;
  const fctx = factorContext(deps);
  const step = await backup.enroll.begin(user, fctx);
  // Shown in this response only: the codes are never kept in the clear, not even in a pending step.
  const pending: Pending = { ...step, id: 'generated', userId: user.id, attemptsLeft: 1, expiresAt: Date.now() + step.ttlSeconds * 1000 };
  await backup.enroll.finish(pending, { confirm: 'yes' }, user, fctx);
  await deps.events.record({ type: 'recovery_codes.generated', userId: user.id, ...requestMeta(ctx), details: { count: deps.config.twoStep.recoveryCodes.count } });
  await notify(deps, user, 'two-step-changed', () => ({ change: deps.render.t('mail.two-step-changed.recoveryCodes') }));
  renderPage(deps, ctx, 'account/recovery-codes-new.njk', 'security', { view: await backup.view(pending, user, fctx), after });
}

/** POST /account/two-step/:kind: the answer to the enrolment's current step. */
export function finishEnrol(deps: AccountDeps) {
  return async function enrolAnswer(ctx: AccountContext) {
    const kind = kindParam(ctx);
    const { user, form } = ctx.state;
    const { t } = deps.render;
    if (!kind) return refuse(deps, ctx, t('account.twoStep.unknownMethod'), 404);
    const factor = factorFor(kind) as Factor;
    const blocked = await prerequisite(deps, user, factor);
    if (blocked) return refuse(deps, ctx, blocked);
    if (factor.enrolment === 'generated') return generateRecoveryCodes(deps, ctx);

    // A passkey added here remembers this device (a second step elsewhere knows it cannot answer there).
    const fctx = { ...factorContext(deps), here: hereOf(deps.config, ctx) };
    // One security question per account: adding it again changes it.
    const replaced = !factor.multiple && (await factor.usable(user, fctx)).length > 0;
    const outcome = await runPending(deps.store.pending, {
      id: form.pending, binding: binding(ctx), keepWhenUnavailable: true, challengeOnce: () => factor.challengeOnce,
      accept: (row) => row.kind === kind && row.userId === user.id,
      check: async (row) => factor.enroll.finish(asPending(row), factor.parse(form), user, fctx),
    });
    if (outcome.kind === 'gone') return begin(deps, ctx, kind, { error: t('account.twoStep.expired'), values: echoValues(form) }, 400);
    if (outcome.kind === 'throttled') throw outcome.error;
    if (outcome.kind === 'refused') {
      const { error: err, back } = outcome;
      const error = t(err.messageKey, err.vars);
      if (!back) return begin(deps, ctx, kind, { error: err.counts && !factor.challengeOnce ? t('account.twoStep.tooManyWrong') : error, values: echoValues(form) }, 400);
      return renderEnrol(deps, ctx, { kind, pending: asPending(back), view: await factor.view(asPending(back), user, fctx), error, values: echoValues(form) }, 400);
    }
    const result: Authenticator | Step = outcome.value;
    if (isStep(result)) {
      const next = asPending(await deps.store.pending.put({ ...result, binding: binding(ctx), userId: user.id }));
      return renderEnrol(deps, ctx, { kind, pending: next, view: await factor.view(next, user, fctx), values: echoValues(form) });
    }
    await deps.events.record({ type: replaced ? 'two_step.changed' : 'two_step.added', userId: user.id, ...requestMeta(ctx), details: { kind, label: result.label } });
    await countAsRecentSignIn(deps, ctx, factor as Factor, result);
    await notify(deps, user, 'two-step-changed', () => ({ change: t(`mail.two-step-changed.${replaced ? 'changed' : 'added'}`, { method: methodName(deps, kind), label: result.label }) }));
    // The first possession method comes with recovery codes, for the day it is out of reach.
    if (isPossession(factor) && (await backup.usable(user, fctx)).length === 0) {
      return generateRecoveryCodes(deps, ctx, t('account.twoStep.addedWithCodes', { method: methodName(deps, kind) }));
    }
    doneRedirect(deps, ctx, '/account/security', replaced ? 'twoStepChanged' : 'twoStepAdded');
  };
}

/** The apps the user uses that need mfa (a client minimum level of mfa or more). */
async function appsNeedingMfa(deps: AccountDeps, user: User): Promise<string[]> {
  const provider = deps.provider();
  const names: string[] = [];
  for (const app of await connectedApps(deps, user.id)) {
    const client = await provider.Client.find(app.clientId).catch(() => undefined);
    const minimum = client?.metadata().minimum_acr;
    if (typeof minimum === 'string' && rank(minimum) >= rank(ACR.mfa)) names.push(app.name);
  }
  return names;
}

/**
 * Removes these methods of the user (one, or every passkey), unless the rules forbid it; the reason when
 * they do. The security question stays while other methods need it; the last possession method stays
 * while the user's preference or an app they use needs one; recovery codes go with the last of them.
 */
async function remove(deps: AccountDeps, ctx: AccountContext, targets: Authenticator[]): Promise<string | undefined> {
  const { user } = ctx.state;
  const { t } = deps.render;
  const gone = new Set(targets.map((a) => a.id));
  const all = await deps.store.authenticators.listForUser(user.id);
  const rest = all.filter((a) => !gone.has(a.id));
  // A method others need stays while they exist.
  const needed = (a: Authenticator) => isStepKind(a.kind) && rest.some((r) => needing(a.kind as StepKind).some((f) => f.kind === r.kind && !f.backsUp));
  if (targets.some(needed)) return t('account.twoStep.questionNeeded');
  // A method that cannot be used now (a phone whose app signed out) is no method to keep the rules with.
  const outOfUse = await outOfUseAmong(rest, factorContext(deps));
  if (takesLastPossession(all.filter((a) => !outOfUse.has(a.id)), targets)) {
    if (user.verificationPreference === 'always') return t('account.twoStep.neededByPreference');
    const apps = await appsNeedingMfa(deps, user);
    if (apps.length) return t('account.twoStep.neededByApps', { apps: apps.join(', ') });
  }
  // Recovery codes back up the possession methods: they go with the last one (or on their own).
  await removeMethods(deps.store, user.id, targets);
  for (const target of targets) {
    await deps.events.record({ type: 'two_step.removed', userId: user.id, ...requestMeta(ctx), details: { kind: target.kind, label: target.label } });
  }
  const change = () => targets.length === 1
    ? t('mail.two-step-changed.removed', { method: methodName(deps, targets[0]!.kind), label: targets[0]!.label })
    : t('mail.two-step-changed.removedMany', { method: methodName(deps, targets[0]!.kind), count: targets.length });
  await notify(deps, user, 'two-step-changed', () => ({ change: change() }));
  return undefined;
}

/** POST /account/two-step/remove. */
export function removeMethod(deps: AccountDeps) {
  return async function removeTwoStep(ctx: AccountContext) {
    const { user } = ctx.state;
    const parsed = idForm.safeParse(ctx.state.form);
    const target = parsed.success ? await deps.store.authenticators.find(user.id, parsed.data.id) : undefined;
    if (!target || !isStepKind(target.kind)) return refuse(deps, ctx, deps.render.t('account.twoStep.gone'));
    const refused = await remove(deps, ctx, [target]);
    if (refused) return refuse(deps, ctx, refused);
    doneRedirect(deps, ctx, '/account/security', 'twoStepRemoved');
  };
}

/** POST /account/passkeys/off: "Sign in with face or fingerprint" off: every passkey of the account goes. */
export function passkeysOff(deps: AccountDeps) {
  return async function turnPasskeysOff(ctx: AccountContext) {
    const passkeys = (await deps.store.authenticators.listForUser(ctx.state.user.id)).filter((a) => a.kind === webauthn.kind);
    if (!passkeys.length) return refuse(deps, ctx, deps.render.t('account.twoStep.gone'));
    const refused = await remove(deps, ctx, passkeys);
    if (refused) return refuse(deps, ctx, refused);
    doneRedirect(deps, ctx, '/account/security', 'passkeysOff');
  };
}

/** POST /account/two-step/rename. */
export function renameMethod(deps: AccountDeps) {
  return async function renameTwoStep(ctx: AccountContext) {
    const { user } = ctx.state;
    const { t } = deps.render;
    const parsed = renameForm.safeParse(ctx.state.form);
    if (!parsed.success) return refuse(deps, ctx, t('account.twoStep.nameInvalid'));
    const target = await deps.store.authenticators.find(user.id, parsed.data.id);
    if (!target || !isStepKind(target.kind) || !factorFor(target.kind).multiple) return refuse(deps, ctx, t('account.twoStep.gone'));
    await deps.store.authenticators.rename(user.id, target.id, parsed.data.label);
    await (factorFor(target.kind) as Factor).renamed?.(target, parsed.data.label, factorContext(deps));
    await deps.events.record({ type: 'two_step.renamed', userId: user.id, ...requestMeta(ctx), details: { kind: target.kind, from: target.label, to: parsed.data.label } });
    await notify(deps, user, 'two-step-changed', () => ({ change: t('mail.two-step-changed.renamed', { method: methodName(deps, target.kind), from: target.label, to: parsed.data.label }) }));
    doneRedirect(deps, ctx, '/account/security', 'twoStepRenamed');
  };
}
