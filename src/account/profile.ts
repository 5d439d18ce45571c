/** Profile: the name (no recent sign-in needed) and the email address, whose change has its own page. */
import { z } from 'zod';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { firstProblem } from './form.ts';
import { PRINTABLE } from '../text.ts';
import { doneRedirect, renderPage } from './page.ts';

const profileForm = z.object({
  name: z.string().trim().max(200, 'account.profile.nameTooLong').regex(PRINTABLE, 'account.profile.nameInvalid'),
});

function show(deps: AccountDeps, ctx: AccountContext, extra: { name?: string; error?: string } = {}, status = 200) {
  const { user } = ctx.state;
  renderPage(deps, ctx, 'account/profile.njk', 'profile', {
    name: extra.name ?? user.name ?? '', email: user.email, emailVerified: user.emailVerifiedAt !== null, error: extra.error,
  }, status);
}

export function showProfile(deps: AccountDeps) {
  return async function profilePage(ctx: AccountContext) {
    show(deps, ctx);
  };
}

export function saveProfile(deps: AccountDeps) {
  return async function saveName(ctx: AccountContext) {
    const parsed = profileForm.safeParse(ctx.state.form);
    if (!parsed.success) {
      return show(deps, ctx, { name: (ctx.state.form.name ?? '').slice(0, 200), error: firstProblem(deps, parsed.error.issues) }, 400);
    }
    const { user } = ctx.state;
    const name = parsed.data.name || null;
    if (name !== user.name) {
      await deps.store.users.updateProfile(user.id, { name });
      await deps.events.record({ type: 'profile.updated', userId: user.id, ...requestMeta(ctx), details: { fields: ['name'] } });
    }
    doneRedirect(deps, ctx, '/account', 'name');
  };
}
