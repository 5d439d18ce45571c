/**
 * The second step of a sign-in, and step-up inside an existing session.
 *
 * After the first factor (sign-in.ts), `afterFirstFactor` works out the requirement: the app's level
 * (acr_values, the essential acr claim, the client's minimum), the user's preference, and, under "verify
 * only when a sign-in looks risky", the risk rules. When the proofs already meet it the sign-in completes;
 * otherwise what was proved so far is kept (store/sign-in-progress.ts) and the browser goes to
 * /interaction/:uid/verify, which opens on the user's preferred usable method and offers "Try another way"
 * with every other one that would meet what is missing. A method that cannot work now (the provider down,
 * too many codes asked for) says so and is skipped. Nothing here grants anything: a sign-in in progress is
 * powerless until complete.ts calls finish.ts.
 *
 * Step-up: when oidc-provider asks for a login only because the session's level is too low (and neither
 * max_age nor prompt=login demand a new sign-in), the session's own proofs are kept and only what is
 * missing is asked for; the password is not asked again.
 */
import type { Context } from 'koa';
import { factorContext, factorFor, isPossession, STEP_KINDS, usableMethods, type Method } from '../factors/index.ts';
import { FactorError, type Factor, type Pending, type Proof, type StepKind, type View } from '../factors/types.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { User } from '../store/users.ts';
import { ThrottledError } from './attempts.ts';
import { completeSignIn, stepBinding, type SignInState } from './complete.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { finishWithError } from './finish.ts';
import { ACR, levelOf, meets, proofsFromAmr, rank, requiredLevel, requirementFor, riskDecides, wouldMeet, type Acr, type Requirement } from './level.ts';
import { assessRisk, gatherRisk, type RiskReason } from './risk.ts';

function parseClaims(value: unknown) {
  if (typeof value !== 'string') return undefined;
  try {
    return JSON.parse(value) as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } };
  } catch {
    return undefined;
  }
}

/** The level the app's request needs (the same rule oidc/policy.ts applies to a session). */
export function requestedAcr(ctx: InteractionContext): Acr {
  const { params } = ctx.state.details;
  return requiredLevel({
    acrValues: typeof params.acr_values === 'string' ? params.acr_values : undefined,
    acrClaim: parseClaims(params.claims)?.id_token?.acr,
    clientMinimum: ctx.state.clientMinimumAcr,
  });
}

const meta = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') || null });

/**
 * The order methods are offered in: usual ones first (the last used first, then the strongest), SMS after
 * them, recovery codes last.
 */
const OFFER_RANK = { normal: 0, restricted: 1, 'last-resort': 2 } as const;
const strength = (m: Method) => (m.factor.proof.phishingResistant ? 2 : m.factor.proof.category === 'knowledge' ? 0 : 1);
function byPreference(a: Method, b: Method): number {
  const offer = OFFER_RANK[a.factor.offer] - OFFER_RANK[b.factor.offer];
  if (offer) return offer;
  const used = (b.authenticator.lastUsedAt?.getTime() ?? 0) - (a.authenticator.lastUsedAt?.getTime() ?? 0);
  return used || strength(b) - strength(a);
}

/** The user's usable methods that would meet what is still missing, in the order they are offered. */
async function candidates(deps: InteractionDeps, state: SignInState): Promise<Method[]> {
  const methods = await usableMethods(state.user, factorContext(deps));
  return methods.filter((m) => wouldMeet(state.proofs, m.factor.proof, state.requirement)).sort(byPreference);
}

/** After the first factor: complete the sign-in, or ask for a second step. */
export async function afterFirstFactor(deps: InteractionDeps, ctx: InteractionContext, user: User, proofs: Proof[], passkeyCapable = false): Promise<void> {
  const methods = await usableMethods(user, factorContext(deps));
  const policy = {
    preference: user.verificationPreference, hasPossession: methods.some(isPossession), hasSecondStep: methods.length > 0,
    firstFactor: levelOf(proofs).acr,
  };
  // The risk rules decide only where they can: "only when risky", with a method to ask for, after a password.
  const risk: RiskReason[] = riskDecides(policy) ? assessRisk(await gatherRisk(deps, ctx, user), deps.config.risk) : [];
  const requirement = requirementFor(requestedAcr(ctx), { ...policy, riskReasons: risk });
  await proceed(deps, ctx, { user, proofs, requirement, reasons: requirement.secondStep ? risk : [], passkeyCapable });
}

/** Completes the sign-in when the proofs are enough; else keeps them and sends the browser to the second step. */
async function proceed(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  if (meets(state.proofs, state.requirement)) return completeSignIn(deps, ctx, state);
  const { details } = ctx.state;
  if ((await candidates(deps, state)).length === 0) return cannotMeet(deps, ctx, state);
  await deps.store.progress.start({
    interactionUid: details.uid, userId: state.user.id, proofs: state.proofs, reasons: state.reasons, requirement: { ...state.requirement },
    passkeyCapable: state.passkeyCapable, complete: false,
  }, deps.config.twoStep.stepTtlSeconds);
  await deps.events.record({
    type: 'sign_in.second_step', userId: state.user.id, ...meta(ctx),
    details: { need: state.requirement.acr, client: details.params.client_id, ...(state.reasons.length ? { reasons: state.reasons } : {}) },
  });
  ctx.status = 303;
  ctx.redirect(`/interaction/${details.uid}/verify`);
}

/**
 * Nothing the user has can reach the level: never a weaker token. The page says which kind of method would
 * (two-step verification for mfa, a passkey for phr) and how to add one on the account page; going back
 * gives the app unmet_authentication_requirements.
 */
async function cannotMeet(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  const { details } = ctx.state;
  const { user, requirement } = state;
  await deps.events.record({
    type: 'sign_in.unmet_level', userId: user.id, ...meta(ctx),
    details: { need: requirement.acr, reached: state.proofs.length ? 'partial' : 'none', client: details.params.client_id },
  });
  const methods = await usableMethods(user, factorContext(deps));
  // A kind of method that would do, were it set up (there is one for every level Latchkey knows).
  const would = STEP_KINDS.filter((kind) => wouldMeet(state.proofs, factorFor(kind).proof, requirement));
  if (would.length === 0) {
    return finishWithError(ctx, deps.provider(), 'unmet_authentication_requirements',
      `the requested authentication level ${requirement.acr} cannot be reached for this account`);
  }
  await deps.store.progress.delete(details.uid);
  ctx.type = 'html';
  ctx.body = deps.render('interaction/enroll-required.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName,
    need: rank(requirement.acr) >= rank(ACR.phr) ? 'phr' : 'mfa',
    hasQuestion: methods.some((m) => m.factor.kind === 'security-question'),
  });
}

/**
 * oidc-provider asks for a login because the session's level is below what the app asked for, and for no
 * other reason (not max_age, not prompt=login, not another account): a step-up.
 */
export function isStepUp(ctx: InteractionContext): boolean {
  const { details } = ctx.state;
  const reasons = (details.prompt.reasons ?? []) as string[];
  return !!details.session?.accountId && reasons.length > 0 && reasons.every((r) => r === 'acr_level');
}

/** Starts a step-up from the session's own proofs; false when it cannot (the page then asks for a full sign-in). */
export async function startStepUp(deps: InteractionDeps, ctx: InteractionContext): Promise<boolean> {
  const session = ctx.state.details.session!;
  const user = await deps.store.users.findById(session.accountId);
  if (!user || user.status !== 'active') return false;
  const proofs = proofsFromAmr((session as { amr?: unknown[] }).amr, session.uid ?? 'session');
  if (!proofs.some((p) => p.kind === 'password')) return false;
  const methods = await usableMethods(user, factorContext(deps));
  const requirement = requirementFor(requestedAcr(ctx), {
    preference: user.verificationPreference, hasPossession: methods.some(isPossession), hasSecondStep: methods.length > 0, riskReasons: [],
    firstFactor: levelOf(proofs).acr,
  });
  // Already enough: nothing to step up to, and a sign-in nobody took part in would misstate auth_time.
  if (meets(proofs, requirement)) return false;
  await proceed(deps, ctx, { user, proofs, requirement, reasons: [], passkeyCapable: false });
  return true;
}

/** The sign-in in progress for this interaction and its (active) user, or undefined. */
async function loadState(deps: InteractionDeps, ctx: InteractionContext): Promise<SignInState | undefined> {
  const progress = await deps.store.progress.find(ctx.state.details.uid);
  const user = progress ? await deps.store.users.findById(progress.userId) : undefined;
  // A finished sign-in waiting on the passkey offer is not a second step to answer again.
  if (!progress || progress.complete || !user || user.status !== 'active') return undefined;
  return {
    user,
    proofs: progress.proofs as Proof[],
    requirement: progress.requirement as unknown as Requirement,
    reasons: progress.reasons as RiskReason[],
    passkeyCapable: progress.passkeyCapable,
  };
}

/** Back to the start of this sign-in (the password page) when there is nothing in progress. */
function restart(ctx: InteractionContext): void {
  ctx.status = 303;
  ctx.redirect(`/interaction/${ctx.state.details.uid}`);
}

interface PageVars {
  method: Method;
  pending: Pending;
  view: View;
  others: number;
  error?: string | undefined;
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
    others: vars.others, error: vars.error,
  });
}

interface Unavailable {
  id: string;
  message: string;
}

async function renderMethods(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, unavailable?: Unavailable, status = 200): Promise<void> {
  const { details } = ctx.state;
  const list = await candidates(deps, state);
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/verify-methods.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, reasons: state.reasons,
    methods: list.map((m) => ({ id: m.authenticator.id, kind: m.factor.kind, label: m.authenticator.label, unavailable: m.authenticator.id === unavailable?.id })),
    error: unavailable?.message,
  });
}

const asPending = (row: PendingRow): Pending => ({ ...row, userId: row.userId!, kind: row.kind as StepKind });

/**
 * The challenge for a method: the one already sent (an SMS code still alive) or a new one. A method that
 * cannot work now sends the user to the list with the reason.
 */
async function openChallenge(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, method: Method, others: number, fresh = false, error?: { message: string; status: number }): Promise<void> {
  const binding = stepBinding(ctx.state.details.uid);
  const fctx = factorContext(deps);
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
    } catch (err) {
      if (!(err instanceof FactorError)) throw err;
      deps.log.info({ kind: method.factor.kind, reason: err.code }, 'second step unavailable');
      return renderMethods(deps, ctx, state, { id: method.authenticator.id, message: deps.render.t(err.messageKey, err.vars) }, err.code === 'limited' ? 429 : 503);
    }
  }
  renderChallenge(deps, ctx, state, { method, pending, view: await method.factor.view(pending, state.user, fctx), others, error: error?.message }, error?.status);
}

/** GET /interaction/:uid/verify[?method=<authenticator id>]: the challenge of the chosen (or preferred) method. */
export function showSecondStep(deps: InteractionDeps) {
  return async function secondStepPage(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return restart(ctx);
    const list = await candidates(deps, state);
    const asked = typeof ctx.query.method === 'string' ? list.find((m) => m.authenticator.id === ctx.query.method) : undefined;
    const method = asked ?? list[0];
    if (!method) return cannotMeet(deps, ctx, state);
    await openChallenge(deps, ctx, state, method, list.length - 1);
  };
}

/** GET /interaction/:uid/verify/methods: "Try another way". */
export function showMethods(deps: InteractionDeps) {
  return async function methodsPage(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return restart(ctx);
    await renderMethods(deps, ctx, state);
  };
}

/** POST /interaction/:uid/verify/resend: a new code for the method (within its limits). */
export function resend(deps: InteractionDeps) {
  return async function resendCode(ctx: InteractionContext) {
    const state = await loadState(deps, ctx);
    if (!state) return restart(ctx);
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
    if (!state) return restart(ctx);
    const { details, form } = ctx.state;
    const binding = stepBinding(details.uid);
    const { t } = deps.render;
    // Taken out before it is checked: one answer per challenge, whatever arrives in parallel.
    const taken = typeof form.pending === 'string' && /^[A-Za-z0-9_-]{32}$/.test(form.pending) ? await deps.store.pending.take(form.pending, binding) : undefined;
    const list = await candidates(deps, state);
    const method = taken && taken.userId === state.user.id ? list.find((m) => m.authenticator.id === taken.authenticatorId) : undefined;
    // Unknown, expired, already answered, or for a method that is gone: nothing was checked.
    if (!taken || !method) return renderMethods(deps, ctx, state, { id: '', message: t('factors.errors.expired') }, 400);
    const factor = method.factor as Factor;
    const fctx = factorContext(deps);
    const pending = asPending(taken);
    const subject = { email: state.user.email, ip: ctx.ip };
    let proof: Proof | undefined;
    try {
      const input = factor.parse(form);
      proof = await deps.attempts.withAttempts(subject, () => factor.verify(pending, input, fctx), { resetOnSuccess: false });
    } catch (err) {
      if (err instanceof ThrottledError) {
        const back = await deps.store.pending.putBack(taken, { spent: false });
        if (!err.locked) ctx.set('Retry-After', String(err.retryAfterSeconds));
        const error = err.locked ? t('signIn.locked') : t('signIn.throttled', { seconds: err.retryAfterSeconds });
        if (!back) return renderMethods(deps, ctx, state, { id: '', message: error }, 429);
        return renderChallenge(deps, ctx, state, { method, pending: asPending(back), view: await factor.view(asPending(back), state.user, fctx), others: list.length - 1, error }, 429);
      }
      if (!(err instanceof FactorError)) throw err;
      await deps.events.record({ type: 'two_step.failed', userId: state.user.id, ...meta(ctx), details: { kind: factor.kind, reason: err.code, client: details.params.client_id } });
      const back = err.code === 'unavailable' || err.code === 'expired' ? undefined : await deps.store.pending.putBack(taken, { spent: err.counts });
      // A passkey: a refused answer gets a new challenge at once, with the reason.
      if (!back && factor.challengeOnce && err.code !== 'unavailable') {
        return openChallenge(deps, ctx, state, method, list.length - 1, true, { message: t(err.messageKey, err.vars), status: err.counts ? 401 : 400 });
      }
      if (!back) {
        const message = err.counts ? t('factors.errors.noAttemptsLeft') : t(err.messageKey, err.vars);
        return renderMethods(deps, ctx, state, { id: err.code === 'unavailable' ? method.authenticator.id : '', message }, 400);
      }
      return renderChallenge(deps, ctx, state, {
        method, pending: asPending(back), view: await factor.view(asPending(back), state.user, fctx), others: list.length - 1, error: t(err.messageKey, err.vars),
      }, err.counts ? 401 : 400);
    }
    if (!proof) throw new Error('a verify that neither proved nor failed');
    await deps.events.record({ type: 'two_step.verified', userId: state.user.id, ...meta(ctx), details: { kind: factor.kind, client: details.params.client_id } });
    const updated = await deps.store.progress.addProof(details.uid, state.user.id, proof);
    if (!updated) return restart(ctx);
    await proceed(deps, ctx, { ...state, proofs: updated.proofs as Proof[] });
  };
}

/** POST /interaction/:uid/unmet: back to the app without the level it asked for (it gets the error, never a token). */
export function giveUp(deps: InteractionDeps) {
  return async function unmet(ctx: InteractionContext) {
    await deps.store.progress.delete(ctx.state.details.uid);
    await finishWithError(ctx, deps.provider(), 'unmet_authentication_requirements', 'the requested authentication level cannot be reached for this account');
  };
}

