/**
 * The password step. Unknown, disabled and wrong-password answers are identical in words, status and
 * timing (a decoy hash is verified when the account does not exist).
 */
import { z } from 'zod';
import { passwordProof } from '../factors/password.ts';
import type { User } from '../store/users.ts';
import { ThrottledError } from './attempts.ts';
import type { InteractionContext, InteractionDeps } from './context.ts';
import { finishLogin, finishWithError } from './finish.ts';
import { levelOf, requiredLevel, satisfies } from './level.ts';
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

function parseClaims(value: unknown) {
  if (typeof value !== 'string') return undefined;
  try {
    return JSON.parse(value) as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } };
  } catch {
    return undefined;
  }
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
      user = await deps.attempts.withAttempts({ email, ip: ctx.ip }, async () => {
        found = await deps.store.users.findByEmail(email);
        const ok = await deps.hasher.verify(found?.passwordHash, password);
        return ok && found?.status === 'active' ? found : undefined;
      });
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

    const proofs = [passwordProof(user.id)];
    const { params } = ctx.state.details;
    const need = requiredLevel({
      acrValues: typeof params.acr_values === 'string' ? params.acr_values : undefined,
      acrClaim: parseClaims(params.claims)?.id_token?.acr,
      clientMinimum: ctx.state.clientMinimumAcr,
    });
    const reached = levelOf(proofs);
    const provider = deps.provider();
    if (!satisfies(reached.acr, need)) {
      await deps.events.record({ type: 'sign_in.unmet_level', userId: user.id, ...meta, details: { need, reached: reached.acr, client: params.client_id } });
      return finishWithError(ctx, provider, 'unmet_authentication_requirements',
        `the requested authentication level ${need} cannot be reached for this account`);
    }
    await deps.events.record({ type: 'sign_in.succeeded', userId: user.id, ...meta, details: { amr: reached.amr, acr: reached.acr, client: params.client_id } });
    return finishLogin(ctx, provider, { accountId: user.id, proofs });
  };
}
