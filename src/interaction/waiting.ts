/**
 * A finished sign-in waiting on one more page before it is granted (the passkey offer, the recovery codes
 * left): kept as `complete` in sign_in_progress, and granted by the one request that takes it out.
 */
import type { Proof } from '../factors/types.ts';
import { meets } from '../security/level.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { grantLogin } from './grant.ts';
import { stepBinding, type SignInState } from './state.ts';

/** Grants the waiting sign-in, once: its record is taken out, and its proofs must still meet it; else back to the start. */
export async function grantWaiting(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  const { details } = ctx.state;
  const finished = await deps.store.progress.takeComplete(details.uid);
  if (!finished || finished.userId !== state.user.id || !meets(finished.proofs as Proof[], state.requirement)) {
    ctx.status = 303;
    return ctx.redirect(`/interaction/${details.uid}`);
  }
  await deps.store.pending.dropFor(stepBinding(details.uid));
  await grantLogin(ctx, deps.provider(), {
    accountId: state.user.id, proofs: finished.proofs as Proof[], requirement: state.requirement, extraAmr: state.requirement.rba ? ['rba'] : [],
    remember: state.keepSignedIn,
  });
}
