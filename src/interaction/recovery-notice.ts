/**
 * After a sign-in with a recovery code: "You have N recovery codes left" (and, when few are, where to make
 * new ones) before going on to the app. The codes are the last resort for a lost phone or passkey: the
 * user should know, on the spot, how many such days they have left. The mail says it too.
 */
import { factorFor, isStepKind } from '../factors/index.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { loadSignIn, saveSignIn, type SignInState } from './state.ts';
import { grantWaiting } from './waiting.ts';

/** Few enough left to suggest making new ones. */
const FEW = 3;

/** The sign-in used the backup method (a recovery code). */
export const usedRecoveryCode = (state: SignInState) => state.proofs.some((p) => isStepKind(p.kind) && factorFor(p.kind).backsUp);

/** Keeps the finished sign-in (granted on "Continue") and shows how many codes are left. */
export async function showRecoveryLeft(deps: InteractionDeps, ctx: InteractionContext, state: SignInState): Promise<void> {
  const { details } = ctx.state;
  await saveSignIn(deps, details.uid, state, true);
  const left = await deps.store.codes.countLive('recovery_code', state.user.id);
  ctx.type = 'html';
  ctx.body = deps.render('interaction/recovery-left.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, left, few: left <= FEW,
  });
}

/** GET /interaction/:uid while the notice is on screen (a reload): the notice again; false when it is not this one. */
export async function showRecoveryLeftAgain(deps: InteractionDeps, ctx: InteractionContext): Promise<boolean> {
  const state = await loadSignIn(deps, ctx.state.details.uid, true);
  if (!state || !usedRecoveryCode(state)) return false;
  await showRecoveryLeft(deps, ctx, state);
  return true;
}

/** POST /interaction/:uid/continue: on to the app. */
export function continueAfterRecovery(deps: InteractionDeps) {
  return async function continueToApp(ctx: InteractionContext) {
    const state = await loadSignIn(deps, ctx.state.details.uid, true);
    if (!state || !usedRecoveryCode(state)) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${ctx.state.details.uid}`);
    }
    await grantWaiting(deps, ctx, state);
  };
}
