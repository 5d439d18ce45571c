/**
 * Changing the password: needs a recent sign-in AND the current password (counted on the account's shared
 * failure counter, like sign-in), the new one checked by the password rules; optionally signs out every
 * other session. Old reset links die; the user gets an email; the change is a security event.
 */
import { z } from 'zod';
import { passwordProblem } from '../factors/password.ts';
import { ThrottledError } from '../security/attempts.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { endOtherSessions } from './end-sessions.ts';
import { firstProblem } from './form.ts';
import { notify } from './notify.ts';
import { doneRedirect, renderPage } from './page.ts';

const passwordForm = z.object({
  current: z.string().min(1, 'account.password.currentRequired').max(1024, 'signIn.passwordTooLong'),
  password: z.string().min(1, 'account.password.newRequired').max(1024, 'signIn.passwordTooLong'),
  signOutOthers: z.enum(['yes']).optional(),
});

function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  renderPage(deps, ctx, 'account/password.njk', 'security', { signOutOthers: true, ...vars }, status);
}

export function showPasswordForm(deps: AccountDeps) {
  return async function passwordPage(ctx: AccountContext) {
    show(deps, ctx);
  };
}

export function changePassword(deps: AccountDeps) {
  return async function savePassword(ctx: AccountContext) {
    const { user, account, form } = ctx.state;
    const signOutOthers = form.signOutOthers === 'yes';
    const parsed = passwordForm.safeParse(form);
    if (!parsed.success) return show(deps, ctx, { signOutOthers, error: firstProblem(deps, parsed.error.issues) }, 400);
    const { current, password } = parsed.data;
    const meta = requestMeta(ctx);

    let ok: true | undefined;
    try {
      ok = await deps.attempts.withAttempts({ email: user.email, ip: ctx.ip }, async () =>
        (await deps.hasher.verify(user.passwordHash, current)) || undefined);
    } catch (err) {
      if (!(err instanceof ThrottledError)) throw err;
      return show(deps, ctx, { signOutOthers, error: err.respond(ctx, deps.render.t) }, 429);
    }
    if (!ok) {
      await deps.events.record({ type: 'password.change_failed', userId: user.id, ...meta, details: { reason: 'wrong_current_password' } });
      return show(deps, ctx, { signOutOthers, error: deps.render.t('account.password.wrongCurrent') }, 400);
    }
    const problem = passwordProblem(password, { email: user.email, name: user.name });
    if (problem) return show(deps, ctx, { signOutOthers, error: deps.render.t(problem.key, problem.vars) }, 400);

    await deps.store.users.setPassword(user.id, await deps.hasher.hash(password));
    await deps.store.codes.revokeAll('password_reset', user.id);
    const ended = signOutOthers ? await endOtherSessions(deps, user.id, account.oidcSessionUid) : { sessions: 0, apps: [] };
    await deps.events.record({ type: 'password.changed', userId: user.id, ...meta, details: { signedOutOthers: signOutOthers, sessionsEnded: ended.sessions, apps: ended.apps } });
    await notify(deps, user, 'password-changed', { email: user.email });
    doneRedirect(deps, ctx, '/account/security', 'password');
  };
}
