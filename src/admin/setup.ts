/**
 * First start: while no administrator exists, a one-time link opens a page that creates the first one.
 * The link's token is stored hashed; it is spent in the same transaction that creates the admin.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { passwordProblem } from '../factors/password.ts';
import { checkedForm } from '../http/csrf.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Render } from '../http/render.ts';
import type { Services } from '../services.ts';
import { DuplicateEmailError } from '../store/users.ts';
import { requestMeta } from '../http/request-meta.ts';

const setupForm = z.object({
  token: z.string().min(1).max(200),
  email: z.email('setup.emailInvalid').max(320, 'signIn.emailTooLong'),
  name: z.string().trim().max(200, 'setup.nameTooLong').optional(),
  password: z.string().max(1024, 'signIn.passwordTooLong'),
});

/** Issues a fresh setup link when no admin exists (earlier links die). Returns the URL, or undefined. */
export async function issueSetupLink(services: Services): Promise<string | undefined> {
  if (await services.store.users.hasAdmin()) return undefined;
  const token = await services.store.codes.issue('admin_setup', null, services.config.setupLinkTtlSeconds);
  return `${services.config.issuer}/setup?token=${token}`;
}

export function setupRoutes(services: Services, render: Render, csrf: Csrf): Router {
  const router = new Router();
  const checked = checkedForm(csrf);
  const gone = () => new AppError('setup.link_invalid', 404, 'This setup link has expired or was already used. Restart Latchkey for a new one, or use "latchkey users add --admin".');

  const page = (ctx: Context, vars: Record<string, unknown>) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = render('admin/setup.njk', { csrf: csrf.token(ctx), ...vars });
  };

  router.get('/setup', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    if (!token || !(await services.store.codes.peek('admin_setup', token))) throw gone();
    page(ctx, { token });
  });

  router.post('/setup', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const parsed = setupForm.safeParse(raw);
    const token = raw.token ?? '';
    if (!token || !(await services.store.codes.peek('admin_setup', token))) throw gone();
    const issue = parsed.success ? passwordProblem(parsed.data.password, parsed.data) : { key: parsed.error.issues[0]!.message };
    const problem = issue && render.t(issue.key, issue.vars);
    if (!parsed.success || problem) {
      ctx.status = 400;
      return page(ctx, { token, email: raw.email?.slice(0, 320), name: raw.name?.slice(0, 200), error: problem });
    }
    const { email, name, password } = parsed.data;
    let user;
    try {
      user = await services.store.createFirstAdmin(token, {
        email, name: name || null, passwordHash: await services.hasher.hash(password), emailVerified: true,
      });
    } catch (err) {
      if (!(err instanceof DuplicateEmailError)) throw err;
      ctx.status = 400;
      return page(ctx, { token, email, name, error: render.t('setup.emailTaken') });
    }
    if (!user) throw gone();
    await services.events.record({ type: 'admin.setup', userId: user.id, ...requestMeta(ctx) });
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'html';
    ctx.body = render('admin/setup-done.njk', { email: user.email });
  });
  return router;
}
