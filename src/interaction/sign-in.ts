/**
 * The password step. Unknown, disabled and wrong-password answers are identical in words, status and
 * timing (a decoy hash is verified when the account does not exist). A right password is the first proof;
 * step-up.ts decides whether the sign-in needs more.
 */
import { z } from 'zod';
import { passwordProof } from '../factors/password.ts';
import type { User } from '../store/users.ts';
import { ThrottledError } from './attempts.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { afterFirstFactor } from './step-up.ts';
import { askToConfirmEmail } from './verify-email.ts';

const signInForm = z.object({
  email: z.string().trim().min(1, 'signIn.emailRequired').max(320, 'signIn.emailTooLong'),
  password: z.string().min(1, 'signIn.passwordRequired').max(1024, 'signIn.passwordTooLong'),
});

export function renderLogin(deps: InteractionDeps, ctx: InteractionContext, extra: { email?: string; error?: string } = {}) {
  const { details } = ctx.state;
  ctx.type = 'html';
  ctx.body = deps.render('interaction/login.njk', {
    uid: details.uid,
    csrf: deps.csrf.token(ctx),
    clientName: ctx.state.clientName,
    signUp: deps.config.signUp.enabled,
    email: extra.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
    error: extra.error,
  });
}

export function signIn(deps: InteractionDeps) {
  return async function passwordSignIn(ctx: InteractionContext) {
    const parsed = signInForm.safeParse(ctx.state.form);
    if (!parsed.success) {
      ctx.status = 400;
      return renderLogin(deps, ctx, { email: ctx.state.form.email?.slice(0, 320), error: deps.render.t(parsed.error.issues[0]!.message) });
    }
    const { email, password } = parsed.data;
    const meta = { ip: ctx.ip, userAgent: ctx.get('user-agent') || null };
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
      ctx.status = 429;
      if (!err.locked) ctx.set('Retry-After', String(err.retryAfterSeconds));
      const error = err.locked ? deps.render.t('signIn.locked') : deps.render.t('signIn.throttled', { seconds: err.retryAfterSeconds });
      return renderLogin(deps, ctx, { email, error });
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
    return afterFirstFactor(deps, ctx, user, [passwordProof(user.id)], ctx.state.form.passkey === 'capable');
  };
}
