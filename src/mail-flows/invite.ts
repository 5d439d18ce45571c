/**
 * An invitation from an administrator (admin/operations/users.ts, inviteUser): the mailed link opens the
 * password reset's page, where the invitee chooses their first password. Its POST spends the link and sets
 * the password in one transaction (store.acceptInvite), which confirms the address the link went to. The
 * link works once and for 24 hours; the invitee is not signed in: they sign in with the new password.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { checkedForm } from '../http/csrf.ts';
import { pageRenderer, type FieldErrors } from '../http/page.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { linkToken, passwordFromLink } from './mail-links.ts';

export function inviteRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const deadLink = (ctx: Context) => page(ctx, 'mail-flows/invite-invalid.njk', {}, 410);
  const form = (ctx: Context, vars: { token: string; email: unknown; errors?: FieldErrors }, status = 200) =>
    page(ctx, 'mail-flows/reset.njk', { ...vars, invite: true }, status);

  router.get('/invite', async (ctx) => {
    const value = linkToken(ctx.query.token);
    const live = value ? await deps.store.codes.peek('invite', value) : undefined;
    if (!value || !live) return deadLink(ctx);
    form(ctx, { token: value, email: live.data?.email });
  });

  router.post('/invite', checked, async (ctx) => {
    const chosen = await passwordFromLink(deps, ctx, 'invite', { dead: deadLink, again: form });
    if (!chosen) return;
    const user = await deps.store.acceptInvite(chosen.token, await deps.hasher.hash(chosen.password));
    if (!user) return deadLink(ctx);
    await deps.events.record({ type: 'user.invite_accepted', userId: user.id, ...requestMeta(ctx) });
    page(ctx, 'mail-flows/invite-done.njk', { email: user.email });
  });
  return router;
}
