/**
 * An invitation from an administrator (admin/operations/users.ts, inviteUser): the mailed link opens the
 * password reset's page, where the invitee chooses their first password. Its POST spends the link and sets
 * the password in one transaction (store.acceptInvite), which confirms the address the link went to. The
 * link works once and for 24 hours; the invitee is not signed in: they sign in with the new password.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { passwordProblem } from '../factors/password.ts';
import { checkedForm } from '../http/csrf.ts';
import { fieldErrors, pageRenderer, type FieldErrors } from '../http/page.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { linkToken } from './mail-links.ts';

export function inviteRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;
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
    const raw = ctx.state.form as Record<string, string>;
    const value = linkToken(raw.token);
    const live = value ? await deps.store.codes.peek('invite', value) : undefined;
    if (!value || !live) return deadLink(ctx);
    // The password is checked before the link is spent, so a refused password does not cost it.
    const email = typeof live.data?.email === 'string' ? live.data.email : undefined;
    const parsed = z.object({ password: z.string('forms.passwordRequired').min(1, 'forms.passwordRequired') }).safeParse(raw);
    const errors = parsed.success ? {} : fieldErrors(parsed.error, t);
    const problem = parsed.success ? passwordProblem(parsed.data.password, { email }) : undefined;
    if (problem) errors.password = t(problem.key, problem.vars);
    if (!parsed.success || problem) return form(ctx, { token: value, email, errors }, 400);

    const user = await deps.store.acceptInvite(value, await deps.hasher.hash(parsed.data.password));
    if (!user) return deadLink(ctx);
    await deps.events.record({ type: 'user.invite_accepted', userId: user.id, ...requestMeta(ctx) });
    page(ctx, 'mail-flows/invite-done.njk', { email: user.email });
  });
  return router;
}
