/**
 * The sign-in page and its first factor.
 *  - The password: unknown, disabled and wrong-password answers are identical in words, status and timing
 *    (a decoy hash is verified when the account does not exist).
 *  - A passkey alone: the page's "Sign in with face or fingerprint" button, its "Use a security key"
 *    button and passkey autofill on the email field ask for a challenge (POST …/passkey/options, answered
 *    as JSON), the browser signs it, and POST …/passkey checks it: the account is the credential's owner
 *    (a discoverable credential of a passkey or of a security key, no email typed; user verification
 *    required). The challenge belongs to this sign-in and is taken out before checking.
 * Either is the first proof; next-step.ts decides whether the sign-in needs more.
 */
import type { Next } from 'koa';
import { z } from 'zod';
import { factorContext } from '../factors/index.ts';
import { passwordProof } from '../factors/password.ts';
import { FactorError } from '../factors/types.ts';
import { passkeySignIn } from '../factors/passkey-sign-in.ts';
import { webauthn as passkeys, type WebauthnInput } from '../factors/webauthn.ts';
import type { User } from '../store/users.ts';
import { runPending } from '../factors/pending.ts';
import { ThrottledError } from '../security/attempts.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { afterFirstFactor } from './next-step.ts';
import { stepBinding } from './state.ts';
import { askToConfirmEmail } from '../mail-flows/verify-email.ts';
import { requestMeta } from '../http/request-meta.ts';
import { ACCOUNT_APP } from '../first-party/app.ts';
import { consoleActionName } from '../first-party/step-up-action.ts';

const signInForm = z.object({
  email: z.string().trim().min(1, 'signIn.emailRequired').max(320, 'signIn.emailTooLong'),
  password: z.string().min(1, 'signIn.passwordRequired').max(1024, 'signIn.passwordTooLong'),
});

/** The account page asking a signed-in user to confirm it's them before a change (max_age), not an app's sign-in. */
const confirmsForAccount = (details: InteractionContext['state']['details']) =>
  details.params.client_id === ACCOUNT_APP.clientId && details.params.max_age !== undefined && !!details.session?.accountId;

export function renderLogin(deps: InteractionDeps, ctx: InteractionContext, extra: { email?: string; error?: string } = {}) {
  const { details } = ctx.state;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/login.njk', {
    reauth: confirmsForAccount(details),
    consoleAction: consoleActionName(deps.render.t, details.params),
    remember: ctx.state.form?.remember === 'yes',
    uid: details.uid,
    csrf: deps.csrf.token(ctx),
    clientName: ctx.state.clientName,
    signUp: deps.config.signUp.enabled,
    email: extra.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
    error: extra.error,
  });
}

/** What the page's script said of this device: a platform authenticator (a passkey may be offered), none, or unknown. */
function platformAuthenticator(form: Record<string, string>): boolean | null {
  return form.passkey === 'capable' ? true : form.passkey === 'incapable' ? false : null;
}

export function signIn(deps: InteractionDeps) {
  return async function passwordSignIn(ctx: InteractionContext) {
    const parsed = signInForm.safeParse(ctx.state.form);
    if (!parsed.success) {
      ctx.status = 400;
      return renderLogin(deps, ctx, { email: ctx.state.form.email?.slice(0, 320), error: deps.render.t(parsed.error.issues[0]!.message) });
    }
    const { email, password } = parsed.data;
    const meta = requestMeta(ctx);
    const client = ctx.state.details.params.client_id;
    let found: User | undefined;
    let user: User | undefined;
    try {
      // A right password does not clear the failure counter: only a completed sign-in does (complete.ts).
      user = await deps.attempts.withAttempts({ email, ip: ctx.ip }, async () => {
        found = await deps.store.users.findByEmail(email);
        const ok = await deps.hasher.verify(found?.passwordHash, password);
        return ok && found?.status === 'active' ? found : undefined;
      }, { resetOnSuccess: false });
    } catch (err) {
      if (!(err instanceof ThrottledError)) throw err;
      await deps.events.record({ type: 'sign_in.throttled', userId: null, ...meta, details: { locked: err.locked, client } });
      return renderLogin(deps, ctx, { email, error: err.respond(ctx, deps.render.t) });
    }
    if (!user) {
      await deps.events.record({ type: 'sign_in.failed', userId: found?.id ?? null, ...meta, details: { method: 'pwd', client } });
      ctx.status = 401;
      return renderLogin(deps, ctx, { email, error: deps.render.t('signIn.wrong') });
    }
    if (!user.emailVerifiedAt) {
      ctx.status = 403;
      return renderLogin(deps, ctx, { email, error: await askToConfirmEmail(deps, ctx, user, meta) });
    }

    // The page's script says whether this device has a platform authenticator (a passkey may be offered).
    return afterFirstFactor(deps, ctx, user, [passwordProof(user.id)], platformAuthenticator(ctx.state.form), ctx.state.form.remember === 'yes');
  };
}

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
export function passkeySignInStep(deps: InteractionDeps) {
  return async function signInWithPasskey(ctx: InteractionContext, _next: Next) {
    const { form, details } = ctx.state;
    const { t } = deps.render;
    const fctx = factorContext(deps);
    let owner: Awaited<ReturnType<typeof passkeySignIn.owner>>;
    // Taken out before it is checked; a passkey's challenge is never put back (the page asks for a new one).
    const outcome = await runPending(deps.store.pending, {
      id: form.pending, binding: stepBinding(details.uid), keepWhenUnavailable: false, challengeOnce: () => true,
      accept: (row) => row.kind === passkeys.kind && row.userId === null,
      check: async (row) => {
        let input: WebauthnInput | undefined;
        try {
          input = passkeys.parse(form);
          owner = await passkeySignIn.owner(input, fctx);
        } catch (err) {
          if (!(err instanceof FactorError)) throw err;
        }
        // Counted like a wrong password: on the owner's account when the credential is someone's, and per address.
        const subject = { email: owner ? owner.user.email : `passkey:${details.uid}`, ip: ctx.ip };
        return deps.attempts.withAttempts(subject, async () => {
          if (!owner || !input) throw new FactorError('wrong_answer', 'factors.webauthn.unknownCredential');
          return passkeySignIn.prove(row, owner, fctx);
        }, { resetOnSuccess: false });
      },
    });
    if (outcome.kind === 'gone') {
      ctx.status = 400;
      return renderLogin(deps, ctx, { error: t('factors.webauthn.expired') });
    }
    if (outcome.kind === 'throttled') return renderLogin(deps, ctx, { error: outcome.error.respond(ctx, t) });
    if (outcome.kind === 'refused') {
      const err = outcome.error;
      await deps.events.record({ type: 'sign_in.failed', userId: owner?.user.id ?? null, ...requestMeta(ctx), details: { method: 'passkey', reason: err.code, client: details.params.client_id } });
      ctx.status = 401;
      return renderLogin(deps, ctx, { error: t(err.messageKey, err.vars) });
    }
    if (!outcome.value) throw new Error('a passkey check that neither proved nor failed');
    // A passkey just answered: this device has a platform authenticator. A security key says nothing of it.
    const platform = owner!.method.webauthn.attachment === 'platform' ? true : platformAuthenticator(form);
    await afterFirstFactor(deps, ctx, owner!.user, [outcome.value], platform, form.remember === 'yes');
  };
}
