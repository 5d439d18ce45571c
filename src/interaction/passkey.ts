/**
 * Passkeys in the sign-in flow:
 *  - signing in with a passkey alone: the sign-in page's "Sign in with face or fingerprint" button and
 *    passkey autofill on the email field ask for a challenge (POST …/passkey/options, answered as JSON), the
 *    browser signs it, and POST …/passkey checks it: the account is the credential's owner (a discoverable
 *    credential, no email typed). The challenge belongs to this sign-in and is taken out before checking.
 *  - the offer after a sign-in without a passkey, on a device whose browser reports a platform
 *    authenticator: "Sign in faster next time with face or fingerprint", with "Not now" and "Don't ask
 *    again" (remembered for this user on this device). Only a sign-in that reached the highest level the
 *    user can reach may add one (as on the account page), and the sign-in is granted only after the answer.
 */
import type { Next } from 'koa';
import { factorContext, usableMethods } from '../factors/index.ts';
import { FactorError, type Pending, type Proof } from '../factors/types.ts';
import { passkeySignIn, webauthn as passkeys, type WebauthnInput } from '../factors/webauthn.ts';
import { notify } from '../account/notify.ts';
import type { SignInState } from './complete.ts';
import { stepBinding } from './complete.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { deviceCookie, deviceHash } from './device.ts';
import { finishLogin } from './finish.ts';
import { highestReachable, levelOf, meets, satisfies, type Requirement } from './level.ts';
import type { RiskReason } from './risk.ts';
import { ThrottledError } from './attempts.ts';
import { afterFirstFactor } from './step-up.ts';

const PENDING_ID = /^[A-Za-z0-9_-]{32}$/;
const meta = (ctx: InteractionContext) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') || null });

/** POST /interaction/:uid/passkey/options: a challenge for whoever signs in with a passkey here (JSON). */
export const PASSKEY_OPTIONS_PER_MINUTE = 300;

export function passkeyOptions(deps: InteractionDeps) {
  return async function options(ctx: InteractionContext) {
    // Each one stores a challenge until it expires: a few a minute per address are plenty for any browser.
    if (!(await deps.store.counters.take(`passkey-options:${ctx.ip}`, PASSKEY_OPTIONS_PER_MINUTE, 60))) {
      ctx.status = 429;
      ctx.set('Retry-After', '60');
      ctx.body = { error: 'too_many_requests', message: deps.render.t('factors.errors.limited') };
      return;
    }
    const step = await passkeySignIn.begin(factorContext(deps));
    const pending = await deps.store.pending.put({ ...step, binding: stepBinding(ctx.state.details.uid), userId: null });
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { pending: pending.id, options: step.data.options };
  };
}

/** POST /interaction/:uid/passkey: the signed challenge; the owner of the credential is the one signing in. */
export function passkeySignInStep(deps: InteractionDeps, renderLogin: (ctx: InteractionContext, extra: { error?: string }) => void) {
  return async function signInWithPasskey(ctx: InteractionContext, _next: Next) {
    const { form, details } = ctx.state;
    const { t } = deps.render;
    const fctx = factorContext(deps);
    const taken = PENDING_ID.test(form.pending ?? '') ? await deps.store.pending.take(form.pending!, stepBinding(details.uid)) : undefined;
    if (!taken || taken.kind !== 'webauthn' || taken.userId !== null) {
      ctx.status = 400;
      return renderLogin(ctx, { error: t('factors.webauthn.expired') });
    }
    let input: WebauthnInput | undefined;
    let owner: Awaited<ReturnType<typeof passkeySignIn.owner>>;
    try {
      input = passkeys.parse(form);
      owner = await passkeySignIn.owner(input, fctx);
    } catch (err) {
      if (!(err instanceof FactorError)) throw err;
      owner = undefined;
    }
    // Counted like a wrong password: on the owner's account when the credential is someone's, and per address.
    const subject = { email: owner ? owner.user.email : `passkey:${details.uid}`, ip: ctx.ip };
    let proof: Proof | undefined;
    try {
      proof = await deps.attempts.withAttempts(subject, async () => {
        if (!owner || !input) throw new FactorError('wrong_answer', 'factors.webauthn.unknownCredential');
        return passkeySignIn.prove(taken, owner, fctx);
      }, { resetOnSuccess: false });
    } catch (err) {
      if (err instanceof ThrottledError) {
        ctx.status = 429;
        return renderLogin(ctx, { error: err.locked ? t('signIn.locked') : t('signIn.throttled', { seconds: err.retryAfterSeconds }) });
      }
      if (!(err instanceof FactorError)) throw err;
      await deps.events.record({ type: 'sign_in.failed', userId: owner?.user.id ?? null, ...meta(ctx), details: { method: 'passkey', reason: err.code, client: details.params.client_id } });
      ctx.status = 401;
      return renderLogin(ctx, { error: t(err.messageKey, err.vars) });
    }
    await afterFirstFactor(deps, ctx, owner!.user, [proof!], false);
  };
}

/** Offer a passkey at the end of this sign-in? (The browser reported a platform authenticator before.) */
export async function shouldOfferPasskey(deps: InteractionDeps, _ctx: InteractionContext, state: SignInState, device: string): Promise<boolean> {
  if (!deps.config.webauthn.offerAfterSignIn || state.proofs.some((p) => p.kind === 'webauthn')) return false;
  const methods = await usableMethods(state.user, factorContext(deps));
  if (methods.some((m) => m.factor.kind === 'webauthn')) return false;
  // The same rules as the account page: the security question first, and a sign-in at the user's highest level.
  if (passkeys.needsSecurityQuestion && !methods.some((m) => m.factor.kind === 'security-question')) return false;
  if (!satisfies(levelOf(state.proofs).acr, highestReachable(methods.map((m) => m.factor.proof)))) return false;
  return !(await deps.store.devices.passkeyOfferDeclined(state.user.id, device));
}

/** Keeps the finished sign-in (granted only after the answer) and shows the offer. */
export async function offerPasskey(deps: InteractionDeps, ctx: InteractionContext, state: SignInState, error?: string): Promise<void> {
  const { details } = ctx.state;
  await deps.store.progress.start({
    interactionUid: details.uid, userId: state.user.id, proofs: state.proofs, reasons: state.reasons,
    requirement: { ...state.requirement }, passkeyCapable: true, complete: true,
  }, deps.config.twoStep.stepTtlSeconds);
  const fctx = factorContext(deps);
  const step = await passkeys.enroll.begin(state.user, fctx);
  const pending = await deps.store.pending.put({ ...step, binding: stepBinding(details.uid), userId: state.user.id });
  const view = await passkeys.view({ ...pending, userId: state.user.id, kind: 'webauthn' } as Pending<'webauthn'>, state.user, fctx);
  ctx.status = error ? 400 : 200;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/passkey-offer.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, view, pendingId: pending.id, error,
  });
}

/** The sign-in record waiting on the offer, as a state; undefined when there is none (or its user is gone). */
async function offerState(deps: InteractionDeps, ctx: InteractionContext): Promise<SignInState | undefined> {
  const progress = await deps.store.progress.find(ctx.state.details.uid);
  const user = progress?.complete ? await deps.store.users.findById(progress.userId) : undefined;
  if (!progress || !user || user.status !== 'active') return undefined;
  return {
    user, proofs: progress.proofs as Proof[], requirement: progress.requirement as unknown as Requirement,
    reasons: progress.reasons as RiskReason[], passkeyCapable: true,
  };
}

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
      const fctx = factorContext(deps);
      const taken = PENDING_ID.test(form.pending ?? '') ? await deps.store.pending.take(form.pending!, stepBinding(details.uid)) : undefined;
      if (!taken || taken.kind !== 'webauthn' || taken.userId !== user.id) return offerPasskey(deps, ctx, state, deps.render.t('factors.webauthn.expired'));
      try {
        const added = await passkeys.enroll.finish({ ...taken, userId: user.id, kind: 'webauthn' }, passkeys.parse(form), user, fctx);
        if ('ttlSeconds' in added) throw new Error('a passkey enrolment has one step');
        await deps.events.record({ type: 'two_step.added', userId: user.id, ...meta(ctx), details: { kind: 'webauthn', label: added.label, via: 'sign_in_offer' } });
        await notify(deps, user.email, 'two-step-changed', { change: deps.render.t('mail.two-step-changed.added', { method: deps.render.t('factors.webauthn.name'), label: added.label }) });
      } catch (err) {
        if (!(err instanceof FactorError)) throw err;
        return offerPasskey(deps, ctx, state, deps.render.t(err.messageKey, err.vars));
      }
    } else if (form.choice === 'never' && id) {
      await deps.store.devices.declinePasskeyOffer(user.id, deviceHash(id));
    }
    // One answer grants the sign-in, once: the record is taken out, and its proofs must still meet it.
    const finished = await deps.store.progress.takeComplete(details.uid);
    if (!finished || finished.userId !== user.id || !meets(finished.proofs as Proof[], state.requirement)) {
      ctx.status = 303;
      return ctx.redirect(`/interaction/${details.uid}`);
    }
    await deps.store.pending.dropFor(stepBinding(details.uid));
    await finishLogin(ctx, deps.provider(), { accountId: user.id, proofs: finished.proofs as Proof[], extraAmr: state.requirement.rba ? ['rba'] : [] });
  };
}
