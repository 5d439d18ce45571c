/**
 * The link of a help-desk reset (admin/operations/two-step-reset.ts): the way back in after a lost second
 * factor. The GET shows a password form and spends nothing (mail scanners follow links). The POST asks for
 * the account's password, then hands the browser an enrolment-only session (recover-two-step-enrol.ts),
 * where the person adds a new method and gets new recovery codes. Nothing here signs anyone in.
 *
 * How the link is spent, so that holding it never buys password guesses:
 *  - every password tried through the link first takes one of its LINK_PASSWORD_TRIES attempts (one
 *    conditional write, `attempts < max`), and is counted on the account's failure counter
 *    (`attempts.withAttempts`: growing delays, the lock) like a sign-in's;
 *  - a wrong password does not spend the link (the owner may mistype), but after LINK_PASSWORD_TRIES
 *    tries it is dead, whatever the counter says;
 *  - the right password spends it (one conditional write, `used_at is null`): of two right answers at once,
 *    one gets the enrolment session.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { checkedForm } from '../http/csrf.ts';
import { fieldErrors, pageRenderer, type FieldErrors } from '../http/page.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { InteractionDeps } from '../interaction/context.ts';
import { FactorError } from '../factors/types.ts';
import { ThrottledError } from '../security/attempts.ts';
import { normalizeEmail, type User } from '../store/users.ts';
import { linkToken } from './mail-links.ts';
import { beginEnrolSession, RECOVER_PATH } from './recover-two-step-enrol.ts';

/** How many passwords one link lets anyone try. */
export const LINK_PASSWORD_TRIES = 5;

const passwordForm = z.object({ password: z.string('forms.passwordRequired').min(1, 'forms.passwordRequired').max(1024, 'forms.passwordRequired') });

export function recoverTwoStepRoutes(deps: InteractionDeps): Router {
  const router = new Router();
  const checked = checkedForm(deps.csrf);
  const page = pageRenderer(deps.render, deps.csrf);
  const { t } = deps.render;
  const deadLink = (ctx: Context) => page(ctx, 'mail-flows/recover-two-step-invalid.njk', {}, 410);
  const form = (ctx: Context, vars: { token: string; email: unknown; errors?: FieldErrors }, status = 200) =>
    page(ctx, 'mail-flows/recover-two-step.njk', vars, status);

  /** The link's active user, with the address the link went to still theirs. */
  const ownerOf = async (link: { userId: string | null; data: Record<string, unknown> | null }): Promise<User | undefined> => {
    const user = link.userId ? await deps.store.users.findById(link.userId) : undefined;
    const email = link.data?.email;
    return user && user.status === 'active' && typeof email === 'string' && normalizeEmail(email) === normalizeEmail(user.email) ? user : undefined;
  };

  router.get(RECOVER_PATH, async (ctx) => {
    const value = linkToken(ctx.query.token);
    const live = value ? await deps.store.codes.peek('two_step_reset', value, LINK_PASSWORD_TRIES) : undefined;
    const user = live && (await ownerOf(live));
    if (!value || !user) return deadLink(ctx);
    form(ctx, { token: value, email: user.email });
  });

  router.post(RECOVER_PATH, checked, async (ctx) => {
    const raw = ctx.state.form as Record<string, string>;
    const token = linkToken(raw.token);
    if (!token) return deadLink(ctx);
    const parsed = passwordForm.safeParse(raw);
    if (!parsed.success) {
      // An empty form is no attempt: nothing is taken from the link.
      const live = await deps.store.codes.peek('two_step_reset', token, LINK_PASSWORD_TRIES);
      const user = live && (await ownerOf(live));
      return user ? form(ctx, { token, email: user.email, errors: fieldErrors(parsed.error, t) }, 400) : deadLink(ctx);
    }
    const live = await deps.store.codes.peek('two_step_reset', token, LINK_PASSWORD_TRIES);
    const user = live && (await ownerOf(live));
    if (!user) return deadLink(ctx);
    const meta = requestMeta(ctx);
    let ok: true | undefined;
    let dead = false;
    try {
      // Not the end of a sign-in: a right password gives back its attempt but clears no earlier failures.
      ok = await deps.attempts.withAttempts({ email: user.email, ip: ctx.ip }, async () => {
        // One of the link's tries, taken (one conditional write) once the failure limits let the attempt
        // through and before the password is checked: a throttled attempt costs the owner no try.
        const link = await deps.store.codes.takeAttempt('two_step_reset', token, LINK_PASSWORD_TRIES);
        if (!link || link.userId !== user.id) {
          dead = true;
          throw new FactorError('expired');
        }
        return (await deps.hasher.verify(user.passwordHash, parsed.data.password)) || undefined;
      }, { resetOnSuccess: false });
    } catch (err) {
      if (dead) return deadLink(ctx);
      if (!(err instanceof ThrottledError)) throw err;
      return form(ctx, { token, email: user.email, errors: { password: err.respond(ctx, t) } }, 429);
    }
    if (!ok) {
      await deps.events.record({ type: 'two_step_reset.password_failed', userId: user.id, ...meta });
      return form(ctx, { token, email: user.email, errors: { password: t('recoverTwoStep.wrongPassword') } }, 400);
    }
    const spent = await deps.store.codes.spend('two_step_reset', token);
    if (!spent) return deadLink(ctx);
    await deps.events.record({ type: 'two_step_reset.link_used', userId: user.id, ...meta });
    await beginEnrolSession(deps, ctx, user);
  });
  return router;
}
