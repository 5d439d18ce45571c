/**
 * The offer after a sign-in without a passkey, on a device whose browser reports a platform authenticator:
 * "Sign in faster next time with face or fingerprint", with "Not now" and "Don't ask again" (remembered for
 * this user on this device). Only a sign-in that reached the highest level the user can reach may add one
 * (as on the account page), and the sign-in is granted only after the answer.
 */
import { factorContext } from '../factors/index.ts';
import type { Pending } from '../factors/types.ts';
import { runPending } from '../factors/pending.ts';
import { webauthn as passkeys } from '../factors/webauthn.ts';
import { notify } from '../account/notify.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { deviceCookie, deviceHash, hereOf } from '../security/device.ts';
import { grantWaiting } from './waiting.ts';
import { highestReachable, levelOf, satisfies } from '../security/level.ts';
import { loadSignIn, methodsOf, saveSignIn, stepBinding, type SignInState } from './state.ts';

/** Offer a passkey at the end of this sign-in? (The browser reported a platform authenticator before.) */
export async function shouldOfferPasskey(deps: InteractionDeps, _ctx: InteractionContext, state: SignInState, device: string): Promise<boolean> {
  if (!deps.config.webauthn.offerAfterSignIn || state.proofs.some((p) => p.kind === passkeys.kind)) return false;
  const methods = await methodsOf(deps, state.user);
  if (methods.some((m) => m.factor.kind === passkeys.kind)) return false;
  // The same rules as the account page: the security question first, and a sign-in at the user's highest level.
  if (passkeys.needs && !methods.some((m) => m.factor.kind === passkeys.needs)) return false;
  if (!satisfies(levelOf(state.proofs).acr, highestReachable(methods.map((m) => m.factor.proof)))) return false;
  return !(await deps.store.devices.passkeyOfferDeclined(state.user.id, device));
}

/** Keeps the finished sign-in (granted only after the answer) and shows the offer. */
export async function offerPasskey(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, error?: string): Promise<void> {
  const { details } = ctx.state;
  await saveSignIn(deps, details.uid, { ...state, passkeyCapable: true }, true);
  const fctx = factorContext(deps);
  const step = await passkeys.enroll.begin(state.user, fctx);
  const pending = await deps.store.pending.put({ ...step, binding: stepBinding(details.uid), userId: state.user.id });
  const view = await passkeys.view({ ...pending, userId: state.user.id, kind: passkeys.kind } as Pending<'webauthn'>, state.user, fctx);
  ctx.status = error ? 400 : 200;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/passkey-offer.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, view, pendingId: pending.id, error,
  });
}

/** The finished sign-in waiting on the offer; undefined when there is none (or its user is gone). */
const offerState = (deps: InteractionDeps, ctx: InteractionContext) => loadSignIn(deps, ctx.state.details.uid, true);

/** GET /interaction/:uid while the offer is on screen (a reload): the offer again; false when there is none. */
export async function showOfferAgain(deps: InteractionDeps, ctx: InteractionContext): Promise<boolean> {
  const state = await offerState(deps, ctx);
  if (!state) return false;
  await offerPasskey(deps, ctx, state);
  return true;
}

/** POST /interaction/:uid/passkey-offer: choice=add (with the new credential) | later | never; then on to the app. */
export function answerPasskeyOffer(deps: InteractionDeps) {
  return async function passkeyOfferAnswer(ctx: InteractionContext) {
    const { form, details } = ctx.state;
    const state = await offerState(deps, ctx);
    if (!state) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${details.uid}`);
    }
    const { user } = state;
    const id = deviceCookie(deps.config).read(ctx);
    if (form.choice === 'add') {
      const fctx = { ...factorContext(deps), here: hereOf(deps.config, ctx, true) };
      const outcome = await runPending(deps.store.pending, {
        id: form.pending, binding: stepBinding(details.uid), keepWhenUnavailable: false, challengeOnce: () => true,
        accept: (row) => row.kind === passkeys.kind && row.userId === user.id,
        check: async (row) => {
          const added = await passkeys.enroll.finish({ ...row, userId: user.id, kind: passkeys.kind }, passkeys.parse(form), user, fctx);
          if ('ttlSeconds' in added) throw new Error('a passkey enrolment has one step');
          return added;
        },
      });
      if (outcome.kind === 'gone') return offerPasskey(deps, ctx, state, deps.render.t('factors.webauthn.expired'));
      if (outcome.kind === 'throttled') return offerPasskey(deps, ctx, state, outcome.error.respond(ctx, deps.render.t));
      if (outcome.kind === 'refused') return offerPasskey(deps, ctx, state, deps.render.t(outcome.error.messageKey, outcome.error.vars));
      const added = outcome.value;
      await deps.events.record({ type: 'two_step.added', userId: user.id, ...requestMeta(ctx), details: { kind: passkeys.kind, label: added.label, via: 'sign_in_offer' } });
      await notify(deps, user, 'two-step-changed', () => ({ change: deps.render.t('mail.two-step-changed.added', { method: deps.render.t('factors.webauthn.name'), label: added.label }) }));
    } else if (form.choice === 'never' && id) {
      await deps.store.devices.declinePasskeyOffer(user.id, deviceHash(id));
    }
    // One answer grants the sign-in, once.
    await grantWaiting(deps, ctx, state);
  };
}
