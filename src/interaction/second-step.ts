/**
 * The pages of the second step (/interaction/:uid/verify…): the challenge of the chosen or preferred
 * method, "Try another way", a new SMS code, and the answer. An answer is checked against the challenge it
 * was given for, which is taken out of storage first; a refused one is counted on the account's failure
 * counter and the challenge put back with one attempt less (or, for a passkey, a new one made). What to ask
 * for and when the sign-in is complete is next-step.ts's to decide.
 */
import { factorContext, type Method } from '../factors/index.ts';
import { FactorError, type Factor, type Pending, type Proof, type StepKind, type View } from '../factors/types.ts';
import { runPending } from '../factors/pending.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { endWithError } from './grant.ts';
import { candidates, cannotMeet, proceed } from './next-step.ts';
import { loadSignIn, stepBinding, type SignInState } from './state.ts';
import { requestMeta as meta } from '../http/request-meta.ts';
import { hereOf } from '../security/device.ts';
import { promptOrigin } from '../push/origin.ts';
import { consoleActionName } from '../first-party/step-up-action.ts';

/** The sign-in waiting on its second step in this interaction, or undefined. */
const loadState = (deps: InteractionDeps, ctx: InteractionContext) => loadSignIn(deps, ctx.state.details.uid, false);

/** Back to the start of this sign-in (the password page) when there is nothing in progress. */
function restart(ctx: InteractionContext): void {
  ctx.status = 303;
  ctx.redirect(`/interaction/${ctx.state.details.uid}`);
}

/**
 * Nothing in progress: a sign-in the person refused on their phone ended there (denied.ts), and whatever
 * its browser asks next, the app gets access_denied; otherwise back to the start.
 */
async function noSignIn(deps: InteractionDeps, ctx: InteractionContext): Promise<void> {
  const binding = stepBinding(ctx.state.details.uid);
  if (!(await deps.store.pending.deniedIn(binding))) return restart(ctx);
  await deps.store.pending.dropFor(binding);
  await endWithError(ctx, deps.provider(), 'access_denied', 'the sign-in was denied on the user\'s phone');
}

interface PageVars {
  method: Method;
  pending: Pending;
  view: View;
  others: number;
  error?: string | undefined;
  /** Why the method the sign-in would have opened on was skipped (it cannot work here). */
  note?: string | undefined;
  /** The challenge is over (a phone's prompt ended): the page offers a new one instead of an answer. */
  ended?: boolean;
}

function renderChallenge(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, vars: PageVars, status = 200): void {
  const { details } = ctx.state;
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/verify.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, email: state.user.email,
    reasons: state.reasons, need: state.requirement.acr, kind: vars.method.factor.kind, label: vars.method.authenticator.label,
    view: vars.view, pendingId: vars.pending.id, action: `/interaction/${details.uid}/verify`,
    resendAction: `/interaction/${details.uid}/verify/resend`, authenticatorId: vars.method.authenticator.id,
    others: vars.others, error: vars.error, note: vars.note, ended: vars.ended ?? false,
    consoleAction: consoleActionName(deps.render.t, details.params),
  });
}

interface Unavailable {
  id: string;
  message: string;
}

/**
 * What this device can do with each method: `why` a method cannot work here (a strings key; it is then
 * never opened here), and whether it was made `elsewhere` (opened only when nothing else can be).
 */
function onThisDevice(deps: InteractionDeps, ctx: InteractionContext, state: SignInState) {
  const here = hereOf(deps.config, ctx, state.passkeyCapable);
  return {
    why: (m: Method) => m.factor.cannotWorkHere?.(m.authenticator, here),
    elsewhere: (m: Method) => m.factor.madeElsewhere?.(m.authenticator, here) ?? false,
  };
}

async function renderMethods(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, unavailable?: Unavailable, status = 200): Promise<void> {
  const { details } = ctx.state;
  const { t } = deps.render;
  const list = await candidates(deps, state);
  const { why } = onThisDevice(deps, ctx, state);
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/verify-methods.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, reasons: state.reasons,
    methods: list.map((m) => {
      const reason = why(m);
      return {
        id: m.authenticator.id, kind: m.factor.kind, label: m.authenticator.label,
        unavailable: m.authenticator.id === unavailable?.id || !!reason, reason: reason ? t(reason) : undefined,
      };
    }),
    error: unavailable?.message,
    consoleAction: consoleActionName(t, details.params),
  });
}

const asPending = (row: PendingRow): Pending => ({ ...row, userId: row.userId!, kind: row.kind as StepKind });

/**
 * The challenge for a method: the one already sent (an SMS code still alive) or a new one. A method that
 * cannot work now sends the user to the list with the reason.
 */
async function openChallenge(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, method: Method, others: number, fresh = false, error?: { message: string; status: number }, note?: string): Promise<void> {
  const binding = stepBinding(ctx.state.details.uid);
  const { details } = ctx.state;
  const fctx = { ...factorContext(deps), origin: promptOrigin(deps.geoip, meta(ctx), { id: String(details.params.client_id), name: ctx.state.clientName ?? '', logoUrl: ctx.state.clientLogo ?? null }) };
  const existing = fresh ? undefined : await deps.store.pending.findLive(binding, method.authenticator.id);
  let pending: Pending;
  if (existing) {
    pending = asPending(existing);
  } else {
    try {
      const step = await method.factor.challenge(state.user, method.authenticator, fctx);
      pending = asPending(await deps.store.pending.put({ ...step, binding, userId: state.user.id }));
      // A new code replaces the one sent before, only once it is sent: a refused resend keeps the old one.
      if (fresh) await deps.store.pending.dropForAuthenticator(binding, method.authenticator.id, pending.id);
      await method.factor.challenged?.(state.user, pending, fctx);
    } catch (err) {
      if (!(err instanceof FactorError)) throw err;
      deps.log.info({ kind: method.factor.kind, reason: err.code }, 'second step unavailable');
      // A new one asked for too soon: the one sent before still holds, shown with the reason.
      const live = fresh && err.code === 'limited' ? await deps.store.pending.findLive(binding, method.authenticator.id) : undefined;
      if (live) {
        const view = await method.factor.view(asPending(live), state.user, fctx);
        return renderChallenge(deps, ctx, state, { method, pending: asPending(live), view, others, error: deps.render.t(err.messageKey, err.vars) }, 429);
      }
      return renderMethods(deps, ctx, state, { id: method.authenticator.id, message: deps.render.t(err.messageKey, err.vars) }, err.code === 'limited' ? 429 : 503);
    }
  }
  renderChallenge(deps, ctx, state, { method, pending, view: await method.factor.view(pending, state.user, fctx), others, error: error?.message, note }, error?.status);
}

/** GET /interaction/:uid/verify[?method=<authenticator id>]: the challenge of the chosen (or preferred) method. */
export function showSecondStep(deps: InteractionDeps) {
  return async function secondStepPage(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return noSignIn(deps, ctx);
    const list = await candidates(deps, state);
    if (list.length === 0) return cannotMeet(deps, ctx, state);
    // Opens on the chosen method, else the first one that can work on this device; never on one that cannot.
    const { why, elsewhere } = onThisDevice(deps, ctx, state);
    const asked = typeof ctx.query.method === 'string' ? list.find((m) => m.authenticator.id === ctx.query.method) : undefined;
    if (asked && why(asked)) return renderMethods(deps, ctx, state, { id: asked.authenticator.id, message: deps.render.t(why(asked)!) }, 400);
    const method = asked ?? list.find((m) => !why(m) && !elsewhere(m)) ?? list.find((m) => !why(m));
    if (!method) return renderMethods(deps, ctx, state);
    // A method before it that cannot work here (a phone app signed out) is skipped at once, and the page says why.
    const skipped = asked ? undefined : list.slice(0, list.indexOf(method)).map(why).find((reason) => reason);
    await openChallenge(deps, ctx, state, method, list.length - 1, false, undefined, skipped && deps.render.t(skipped));
  };
}

/** GET /interaction/:uid/verify/methods: "Try another way". */
export function showMethods(deps: InteractionDeps) {
  return async function methodsPage(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return noSignIn(deps, ctx);
    await renderMethods(deps, ctx, state);
  };
}

/** POST /interaction/:uid/verify/resend: a new code for the method (within its limits). */
export function resend(deps: InteractionDeps) {
  return async function resendCode(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return noSignIn(deps, ctx);
    const list = await candidates(deps, state);
    const method = list.find((m) => m.authenticator.id === ctx.state.form.method);
    if (!method) return renderMethods(deps, ctx, state, undefined, 400);
    await openChallenge(deps, ctx, state, method, list.length - 1, true);
  };
}

/** POST /interaction/:uid/verify: checks the answer against the challenge it was given for. */
export function verifySecondStep(deps: InteractionDeps) {
  return async function checkSecondStep(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return noSignIn(deps, ctx);
    const { details, form } = ctx.state;
    const { t } = deps.render;
    const list = await candidates(deps, state);
    const fctx = factorContext(deps);
    let method: Method | undefined;
    // Taken out before it is checked: one answer per challenge, whatever arrives in parallel.
    const outcome = await runPending(deps.store.pending, {
      id: form.pending, binding: stepBinding(details.uid), keepWhenUnavailable: false,
      challengeOnce: () => method!.factor.challengeOnce,
      accept: (row) => {
        method = row.userId === state.user.id ? list.find((m) => m.authenticator.id === row.authenticatorId) : undefined;
        return !!method;
      },
      check: async (row) => {
        const factor = method!.factor as Factor;
        const input = factor.parse(form);
        return deps.attempts.withAttempts({ email: state.user.email, ip: ctx.ip }, () => factor.verify(asPending(row), input, fctx), { resetOnSuccess: false });
      },
    });
    // Unknown, expired, already answered, or for a method that is gone: nothing was checked.
    if (outcome.kind === 'gone' || !method) return renderMethods(deps, ctx, state, { id: '', message: t('factors.errors.expired') }, 400);
    const factor = method.factor as Factor;
    const others = list.length - 1;
    const challengeAgain = async (back: PendingRow, error: string, status: number) =>
      renderChallenge(deps, ctx, state, { method: method!, pending: asPending(back), view: await factor.view(asPending(back), state.user, fctx), others, error }, status);
    if (outcome.kind === 'throttled') {
      const error = outcome.error.respond(ctx, t);
      if (!outcome.back) return renderMethods(deps, ctx, state, { id: '', message: error }, 429);
      return challengeAgain(outcome.back, error, 429);
    }
    if (outcome.kind === 'refused') {
      const { error: err, back, status } = outcome;
      // Answered on another channel and asked before the answer came ("Continue" while the phone waits): no failure.
      if (factor.answeredElsewhere && err.code === 'invalid_input' && back) return challengeAgain(back, t(err.messageKey, err.vars), 409);
      await deps.events.record({ type: 'two_step.failed', userId: state.user.id, ...meta(ctx), details: { kind: factor.kind, reason: err.code, client: details.params.client_id } });
      // Said no on the phone ("Cancel", "This wasn't me"): the sign-in ends and the app gets access_denied.
      if (err.code === 'denied') {
        await deps.store.progress.delete(details.uid);
        await deps.store.pending.dropFor(stepBinding(details.uid));
        return endWithError(ctx, deps.provider(), 'access_denied', 'the sign-in was denied on the user\'s phone');
      }
      // A passkey: a refused answer gets a new challenge at once, with the reason.
      if (outcome.again) return openChallenge(deps, ctx, state, method, others, true, { message: t(err.messageKey, err.vars), status });
      // A phone's prompt that ended (three wrong numbers): the same page offers "Send again" and "Try another way".
      if (factor.answeredElsewhere && err.code === 'expired') {
        const taken = asPending(outcome.taken);
        return renderChallenge(deps, ctx, state, { method, pending: taken, view: await factor.view(taken, state.user, fctx), others, error: t(err.messageKey, err.vars), ended: true }, 400);
      }
      if (!back) {
        const message = err.counts ? t('factors.errors.noAttemptsLeft') : t(err.messageKey, err.vars);
        return renderMethods(deps, ctx, state, { id: err.code === 'unavailable' ? method.authenticator.id : '', message }, 400);
      }
      return challengeAgain(back, t(err.messageKey, err.vars), status);
    }
    const proof = outcome.value;
    if (!proof) throw new Error('a verify that neither proved nor failed');
    await deps.events.record({ type: 'two_step.verified', userId: state.user.id, ...meta(ctx), details: { kind: factor.kind, client: details.params.client_id } });
    const updated = await deps.store.progress.addProof(details.uid, state.user.id, proof);
    if (!updated) return restart(ctx);
    await proceed(deps, ctx, { ...state, proofs: updated.proofs as Proof[] });
  };
}

/**
 * GET /interaction/:uid/verify/status?pending=…: what the page waiting on an answer from another channel
 * (an approval on a phone) asks, as JSON: waiting, approved, denied, or expired (gone, or another sign-in's).
 */
export function pendingStatus(deps: InteractionDeps) {
  return async function stepStatus(ctx: InteractionContext) {
    const id = typeof ctx.query.pending === 'string' && /^[A-Za-z0-9_-]{32}$/.test(ctx.query.pending) ? ctx.query.pending : undefined;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: id ? await deps.store.pending.statusOf(id, stepBinding(ctx.state.details.uid)) : 'expired' };
  };
}

/** POST /interaction/:uid/unmet: back to the app without the level it asked for (it gets the error, never a token). */
export function giveUp(deps: InteractionDeps) {
  return async function unmet(ctx: InteractionContext) {
    await deps.store.progress.delete(ctx.state.details.uid);
    await endWithError(ctx, deps.provider(), 'unmet_authentication_requirements', 'the requested authentication level cannot be reached for this account');
  };
}

