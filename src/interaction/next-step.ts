/**
 * What comes next in a sign-in, after each proof: the policy.
 *
 * After the first factor (sign-in.ts), `afterFirstFactor` works out the requirement: the app's level
 * (acr_values, the essential acr claim, the client's minimum), the user's preference, and, under "verify
 * only when a sign-in looks risky", the risk rules. When the proofs already meet it the sign-in completes
 * (complete.ts); otherwise what was proved so far is kept (state.ts) and the browser goes to
 * /interaction/:uid/verify (second-step.ts), which opens on the user's preferred usable method and offers
 * "Try another way" with every other one that would meet what is missing. When nothing the user has could
 * meet it, `cannotMeet` says what to set up. Nothing here grants anything: only grant.ts does.
 */
import { factorFor, isPossession, STEP_KINDS, type Method } from '../factors/index.ts';
import type { Proof } from '../factors/types.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { User } from '../store/users.ts';
import { completeSignIn } from './complete.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { endWithError } from './grant.ts';
import { ACR, levelOf, meets, OFFER_ORDER, rank, requiredLevel, requirementFor, riskDecides, wouldMeet, type Acr } from '../security/level.ts';
import { assessRisk, gatherRisk, type RiskReason } from './risk.ts';
import { methodsOf, saveSignIn, type SignInState } from './state.ts';

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

/**
 * The order methods are offered in: usual ones first (the last used first, then the strongest), SMS after
 * them, recovery codes last.
 */
const strength = (m: Method) => (m.factor.proof.phishingResistant ? 2 : m.factor.proof.category === 'knowledge' ? 0 : 1);
function byPreference(a: Method, b: Method): number {
  const offer = OFFER_ORDER[a.factor.offer] - OFFER_ORDER[b.factor.offer];
  if (offer) return offer;
  const used = (b.authenticator.lastUsedAt?.getTime() ?? 0) - (a.authenticator.lastUsedAt?.getTime() ?? 0);
  return used || strength(b) - strength(a);
}

/** The user's usable methods that would meet what is still missing, in the order they are offered. */
export async function candidates(deps: InteractionDeps, state: SignInState): Promise<Method[]> {
  const methods = await methodsOf(deps, state.user);
  return methods.filter((m) => wouldMeet(state.proofs, m.factor.proof, state.requirement)).sort(byPreference);
}

/** After the first factor: complete the sign-in, or ask for a second step. */
export async function afterFirstFactor(deps: InteractionDeps, ctx: InteractionContext, user: User, proofs: Proof[], passkeyCapable: boolean | null = null, keepSignedIn = true): Promise<void> {
  // A help-desk reset waits for its mailed link: nothing completes, whatever is (or is no longer) enrolled.
  if (user.recoveryPendingAt) return recoveryPending(deps, ctx);
  const methods = await methodsOf(deps, user);
  const policy = {
    preference: user.verificationPreference, hasPossession: methods.some((m) => isPossession(m.factor)), hasSecondStep: methods.length > 0,
    firstFactor: levelOf(proofs).acr,
  };
  // The risk rules decide only where they can: "only when risky", with a method to ask for, after a password.
  const risk: RiskReason[] = riskDecides(policy) ? assessRisk(await gatherRisk(deps, ctx, user), deps.config.risk) : [];
  const requirement = requirementFor(requestedAcr(ctx), { ...policy, riskReasons: risk });
  await proceed(deps, ctx, { user, proofs, requirement, reasons: requirement.secondStep ? risk : [], passkeyCapable, keepSignedIn });
}

/** Completes the sign-in when the proofs are enough; else keeps them and sends the browser to the second step. */
export async function proceed(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  if (meets(state.proofs, state.requirement)) return completeSignIn(deps, ctx, state);
  const { details } = ctx.state;
  if ((await candidates(deps, state)).length === 0) return cannotMeet(deps, ctx, state);
  await saveSignIn(deps, details.uid, state, false);
  await deps.events.record({
    type: 'sign_in.second_step', userId: state.user.id, ...requestMeta(ctx),
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
export async function cannotMeet(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  const { details } = ctx.state;
  const { user, requirement } = state;
  await deps.events.record({
    type: 'sign_in.unmet_level', userId: user.id, ...requestMeta(ctx),
    details: { need: requirement.acr, reached: state.proofs.length ? 'partial' : 'none', client: details.params.client_id },
  });
  const methods = await methodsOf(deps, user);
  // A kind of method that would do, were it set up (there is one for every level Latchkey knows).
  const would = STEP_KINDS.filter((kind) => wouldMeet(state.proofs, factorFor(kind).proof, requirement));
  if (would.length === 0) {
    return endWithError(ctx, deps.provider(), 'unmet_authentication_requirements',
      `the requested authentication level ${requirement.acr} cannot be reached for this account`);
  }
  await deps.store.progress.delete(details.uid);
  ctx.type = 'html';
  ctx.body = deps.render('interaction/enroll-required.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName,
    need: rank(requirement.acr) >= rank(ACR.phr) ? 'phr' : 'mfa',
    // The kinds that would do need a method first (the security question): is it there yet?
    hasPrerequisite: would.every((kind) => { const first = factorFor(kind).needs; return !first || methods.some((m) => m.factor.kind === first); }),
  });
}

/**
 * The account's second factor was reset by the help desk and the mailed link has not been used yet: the
 * right password (or passkey) grants nothing; the page says where to go on. Cancelling gives the app
 * access_denied, like any cancelled sign-in.
 */
function recoveryPending(deps: InteractionDeps, ctx: InteractionContext): void {
  ctx.status = 403;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/recovery-pending.njk', { uid: ctx.state.details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName });
}
