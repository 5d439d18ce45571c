/**
 * "This wasn't me", from the alert mailed after a sign-in on a new device. The link opens a page with a
 * button (mail scanners that follow links change nothing); the POST spends the link, signs the account out
 * everywhere (sessions, tokens, apps told by back-channel logout), forgets the device, and sends the user
 * straight on to choosing a new password (the link proved access to the mailbox, as a reset link does).
 * A second factor is still asked at the next sign-in: nothing here signs anyone in.
 */
import Router from '@koa/router';
import { checkedForm } from '../http/csrf.ts';
import { pageRenderer } from '../http/page.ts';
import { revokedGrantSeconds } from '../oidc/adapter.ts';
import { logOutEndedSessions } from '../oidc/end-session.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { inBackground, linkToken } from './mail-links.ts';
import { requestMeta } from '../http/request-meta.ts';

export function notMeRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const dead = (ctx: Parameters<typeof page>[0]) => page(ctx, 'mail-flows/not-me-invalid.njk', {}, 410);

  router.get('/not-me', async (ctx) => {
    const value = linkToken(ctx.query.token);
    const live = value ? await deps.store.codes.peek('not_me', value) : undefined;
    if (!value || !live) return dead(ctx);
    page(ctx, 'mail-flows/not-me.njk', { token: value });
  });

  router.post('/not-me', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const value = linkToken(raw.token);
    const done = value ? await deps.store.signOutEverywhere(value, revokedGrantSeconds(deps.config)) : undefined;
    if (!done) return dead(ctx);
    const { user, sessions } = done;
    await deps.events.record({
      type: 'account.not_me', userId: user.id, ...requestMeta(ctx), details: { sessionsEnded: sessions.length },
    });
    inBackground(deps.log, 'not-me logout', async () => {
      await logOutEndedSessions(deps.provider(), user.id, sessions, deps.log);
    });
    const reset = await deps.store.codes.issue('password_reset', user.id, deps.config.ttl.passwordResetLink, { email: user.email });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${deps.config.issuer}/reset/confirm?token=${reset}&signedOut=1`);
  });
  return router;
}
