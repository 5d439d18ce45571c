/**
 * Step-up inside an existing session: when oidc-provider asks for a login only because the session's level
 * is too low (and neither max_age nor prompt=login demand a new sign-in), the session's own proofs are kept
 * and only what is missing is asked for (next-step.ts); the password is not asked again.
 */
import { isPossession } from '../factors/index.ts';
import { isPasswordProof } from '../factors/password.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { levelOf, meets, proofsFromAmr, requirementFor } from '../security/level.ts';
import { proceed, requestedAcr } from './next-step.ts';
import { methodsOf } from './state.ts';

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
  if (!proofs.some(isPasswordProof)) return false;
  const methods = await methodsOf(deps, user);
  const requirement = requirementFor(requestedAcr(ctx), {
    preference: user.verificationPreference, hasPossession: methods.some((m) => isPossession(m.factor)), hasSecondStep: methods.length > 0, riskReasons: [],
    firstFactor: levelOf(proofs).acr,
  });
  // Already enough: nothing to step up to, and a sign-in nobody took part in would misstate auth_time.
  if (meets(proofs, requirement)) return false;
  // The session keeps its kind of cookie: one that ends with the browser stays so after the step-up.
  const current = session.uid ? await deps.provider().Session.findByUid(session.uid) : undefined;
  await proceed(deps, ctx, { user, proofs, requirement, reasons: [], passkeyCapable: null, keepSignedIn: !current?.transient });
  return true;
}
