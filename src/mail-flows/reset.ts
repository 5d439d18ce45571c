/**
 * Password reset by email. Asking for a link answers the same (status, body, cookies, time) for unknown,
 * existing and disabled accounts: the lookup and the mail happen after the answer. The link opens a form;
 * its POST spends the token and changes the password in one transaction (store.resetPassword), which also
 * kills the other reset links and ends every session and token of the account. The sign-in lock is
 * cleared, the owner is told by email, and the user is never signed in: they sign in with the new password.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { checkedForm } from '../http/csrf.ts';
import { echo, fieldErrors, pageRenderer, type FieldErrors } from '../http/page.ts';
import { revokedGrantSeconds } from '../oidc/adapter.ts';
import { logOutEndedSessions } from '../oidc/end-session.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { inBackground, linkToken, mailPasswordChanged, mailResetLink, passwordFromLink } from './mail-links.ts';
import { interactionUid, liveInteraction } from '../interaction/return-to.ts';
import { emailField } from './sign-up.ts';
import { requestMeta } from '../http/request-meta.ts';

export function resetRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;
  const minutes = Math.round(deps.config.ttl.passwordResetLink / 60);

  const forgotForm = (ctx: Context, vars: { interaction?: string; email?: string; errors?: FieldErrors }, status = 200) =>
    page(ctx, 'mail-flows/forgot.njk', { minutes, ...vars }, status);
  const deadLink = (ctx: Context) => page(ctx, 'mail-flows/reset-invalid.njk', { minutes }, 410);

  // From the sign-in page the link carries the interaction, so "Back to sign in" returns to it.
  router.get(['/reset', '/interaction/:uid/reset'], async (ctx) => {
    forgotForm(ctx, { interaction: await liveInteraction(deps, ctx.params.uid) });
  });

  router.post('/reset', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const interaction = await liveInteraction(deps, raw.interaction);
    const parsed = z.object({ email: emailField }).safeParse(raw);
    if (!parsed.success) return forgotForm(ctx, { interaction, email: echo(raw.email, 320), errors: fieldErrors(parsed.error, t) }, 400);
    const { email } = parsed.data;
    const meta = requestMeta(ctx);
    inBackground(deps.log, 'password reset mail', async () => {
      const user = await deps.store.users.findByEmail(email);
      await deps.events.record({ type: 'password_reset.requested', userId: user?.id ?? null, ...meta, details: { known: !!user } });
      if (user) await mailResetLink(deps, user, meta, interaction);
    });
    page(ctx, 'mail-flows/forgot-sent.njk', { interaction, email, minutes });
  });

  const newPasswordForm = (ctx: Context, vars: { token: string; email: unknown; errors?: FieldErrors; signedOut?: boolean }, status = 200) =>
    page(ctx, 'mail-flows/reset.njk', vars, status);

  router.get('/reset/confirm', async (ctx) => {
    const value = linkToken(ctx.query.token);
    const live = value ? await deps.store.codes.peek('password_reset', value) : undefined;
    if (!value || !live) return deadLink(ctx);
    newPasswordForm(ctx, { token: value, email: live.data?.email, signedOut: ctx.query.signedOut === '1' });
  });

  router.post('/reset/confirm', checked, async (ctx) => {
    const chosen = await passwordFromLink(deps, ctx, 'password_reset', { dead: deadLink, again: newPasswordForm });
    if (!chosen) return;
    const done = await deps.store.resetPassword(chosen.token, await deps.hasher.hash(chosen.password), revokedGrantSeconds(deps.config));
    if (!done) return deadLink(ctx);
    const { user, sessions } = done;
    await deps.attempts.clear(user.email);
    await deps.events.record({
      type: 'password_reset.completed', userId: user.id, ...requestMeta(ctx),
      details: { sessionsEnded: sessions.length },
    });
    inBackground(deps.log, 'password changed', async () => {
      await mailPasswordChanged(deps, user);
      await logOutEndedSessions(deps.provider(), user.id, sessions, deps.log);
    });
    page(ctx, 'mail-flows/reset-done.njk', { interaction: await liveInteraction(deps, interactionUid(done.data?.interaction)) });
  });
  return router;
}
