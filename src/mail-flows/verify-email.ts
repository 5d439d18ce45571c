/**
 * Email verification. The mailed link opens a page with a button: only the POST spends the token (one
 * conditional write), so mail scanners that prefetch links spend nothing. A dead link (expired, used, or
 * superseded by a newer one) gets a clear page with a form that sends a new link. An unverified account
 * that signs in with the right password is not signed in; it is sent a new link instead.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { checkedForm } from '../http/csrf.ts';
import { echo, fieldErrors, pageRenderer } from '../http/page.ts';
import { normalizeEmail, type User } from '../store/users.ts';
import type { InteractionContext, InteractionDeps } from '../interaction/context.ts';
import { inBackground, linkToken, mailVerificationLink, type RequestMeta } from './mail-links.ts';
import { liveInteraction } from '../interaction/return-to.ts';
import { emailField } from './sign-up.ts';
import { requestMeta } from '../http/request-meta.ts';

/**
 * The sign-in step for an account whose address is not confirmed yet (after the right password): no session,
 * a new link (at most one a minute). Returns the message for the sign-in page.
 */
export async function askToConfirmEmail(deps: InteractionDeps, ctx: InteractionContext, user: User, meta: RequestMeta): Promise<string> {
  await deps.events.record({ type: 'sign_in.unverified', userId: user.id, ...meta, details: { client: ctx.state.details.params.client_id } });
  inBackground(deps.log, 'verification mail', () => mailVerificationLink(deps, user, meta, ctx.state.details.uid));
  return deps.render.t('verifyEmail.confirmFirst');
}

export function verifyEmailRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;
  const deadLink = (ctx: Context, vars: Record<string, unknown> = {}, status = 410) => page(ctx, 'mail-flows/verify-invalid.njk', vars, status);

  router.get('/verify', async (ctx) => {
    const value = linkToken(ctx.query.token);
    const live = value ? await deps.store.codes.peek('email_verify', value) : undefined;
    if (!value || !live) return deadLink(ctx);
    page(ctx, 'mail-flows/verify-email.njk', { token: value, email: live.data?.email });
  });

  router.post('/verify', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const value = linkToken(raw.token);
    const spent = value ? await deps.store.codes.spend('email_verify', value) : undefined;
    const email = typeof spent?.data?.email === 'string' ? spent.data.email : undefined;
    if (!spent || !spent.userId || !email) return deadLink(ctx);
    const confirmed = await deps.store.users.markEmailVerified(spent.userId, email);
    const user = await deps.store.users.findById(spent.userId);
    // A link for an address the account no longer has confirms nothing.
    if (!user || normalizeEmail(user.email) !== normalizeEmail(email) || !user.emailVerifiedAt) return deadLink(ctx);
    if (confirmed) await deps.events.record({ type: 'email.verified', userId: user.id, ...requestMeta(ctx) });
    page(ctx, 'mail-flows/verify-done.njk', { email: user.email, interaction: await liveInteraction(deps, spent.data?.interaction) });
  });

  /**
   * "Send a new link", from a dead link's page or from "Check your email": the same answer whether or not
   * the address has an account that still needs confirming (the link mails' limits apply: one a minute per
   * account, a few an hour per address). From a sign-in, the new link leads back to it.
   */
  router.post('/verify/resend', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const parsed = z.object({ email: emailField }).safeParse(raw);
    if (!parsed.success) return deadLink(ctx, { email: echo(raw.email, 320), errors: fieldErrors(parsed.error, t) }, 400);
    const { email } = parsed.data;
    const interaction = await liveInteraction(deps, raw.interaction);
    const meta = requestMeta(ctx);
    inBackground(deps.log, 'verification mail', async () => {
      const user = await deps.store.users.findByEmail(email);
      if (user) await mailVerificationLink(deps, user, meta, interaction);
    });
    page(ctx, 'mail-flows/verify-resent.njk', { email, interaction });
  });
  return router;
}
