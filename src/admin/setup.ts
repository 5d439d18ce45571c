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
import { echo, fieldErrors, pageRenderer, type FieldErrors } from '../http/page.ts';
import type { Render } from '../http/render.ts';
import type { Services } from '../services.ts';
import { DuplicateEmailError, isRole } from '../store/users.ts';
import { requestMeta } from '../http/request-meta.ts';
import { audited } from './operations/audited.ts';

const NAME_MAX = 200;
const EMAIL_MAX = 320;

const setupForm = z.object({
  token: z.string().min(1).max(200),
  name: z.string().trim().max(NAME_MAX, 'setup.nameTooLong').optional(),
  email: z.string('forms.emailRequired').trim().min(1, 'forms.emailRequired').max(EMAIL_MAX, 'forms.emailTooLong').pipe(z.email('setup.emailInvalid')),
  // Its length and content are passwordProblem's to judge (the body itself is size-limited).
  password: z.string('forms.passwordRequired').min(1, 'forms.passwordRequired'),
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
  const page = pageRenderer(render, csrf);
  const { t } = render;
  const gone = () => new AppError('setup.link_invalid', 404, 'This setup link has expired or was already used. Restart Latchkey for a new one, or add an administrator with the command-line tool (users add --admin).');
  const form = (ctx: Context, vars: { token: string; breakGlass: boolean; name?: string; email?: string; errors?: FieldErrors }, status = 200) =>
    page(ctx, 'admin/setup.njk', vars, status);
  // The first start's link, or a break-glass link from `latchkey admin break-glass` (operations/break-glass.ts).
  const linkOf = async (token: string) => {
    const code = token ? await services.store.codes.peek('admin_setup', token) : undefined;
    if (!code) throw gone();
    return { breakGlass: code.data?.breakGlass === true };
  };

  router.get('/setup', async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    form(ctx, { token, ...(await linkOf(token)) });
  });

  router.post('/setup', checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const token = raw.token ?? '';
    const { breakGlass } = await linkOf(token);
    // Every problem at once, each next to its field; what was typed comes back, except the password.
    const parsed = setupForm.safeParse(raw);
    const errors = parsed.success ? {} : fieldErrors(parsed.error, t);
    if (!errors.password) {
      const problem = passwordProblem(raw.password ?? '', { email: raw.email, name: raw.name });
      if (problem) errors.password = t(problem.key, problem.vars);
    }
    const again = (errs: FieldErrors) => form(ctx, { token, breakGlass, name: echo(raw.name, NAME_MAX), email: echo(raw.email, EMAIL_MAX), errors: errs }, 400);
    if (!parsed.success || errors.password) return again(errors);
    const { email, name, password } = parsed.data;
    let user;
    try {
      user = await services.store.createFirstAdmin(token, {
        email, name: name || null, passwordHash: await services.hasher.hash(password), emailVerified: true,
      });
    } catch (err) {
      if (!(err instanceof DuplicateEmailError)) throw err;
      return again({ email: t('setup.emailTaken') });
    }
    if (!user) throw gone();
    // The log's first administrator made themself one, through the link: the audit row and their event.
    const meta = requestMeta(ctx);
    const made = user;
    await audited(services, { via: 'console', userId: made.id, roles: made.roles.filter(isRole), ...meta, requestId: ctx.state.requestId as string | undefined }, {
      action: breakGlass ? 'setup.break_glass_admin' : 'setup.first_admin',
      target: { type: 'user', id: made.id },
      outcome: () => ({ after: { id: made.id, email: made.email, name: made.name, roles: made.roles }, event: { type: 'admin.setup', userId: made.id, ...meta } }),
    }, async () => made);
    page(ctx, 'admin/setup-done.njk', { email: user.email });
  });
  return router;
}
