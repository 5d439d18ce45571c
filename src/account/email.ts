/**
 * Changing the email address. Asking needs a recent sign-in; the link goes to the NEW address (proving it is
 * the user's) and a notice to the old one. The change happens when the link is confirmed: the GET shows a
 * button (mail scanners that follow links change nothing), the POST spends the link and changes the address
 * in one transaction. Whether an address is taken is told only to whoever holds the link to it.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { languageOf } from '../i18n.ts';
import { normalizeEmail, DuplicateEmailError } from '../store/users.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { firstProblem } from './form.ts';
import { notify } from './notify.ts';
import { renderPage } from './page.ts';

/** How long an email-change link works. */
export const EMAIL_CHANGE_TTL_SECONDS = 86400;
export const EMAIL_CHANGE_MAILS_PER_HOUR = 5;

const emailForm = z.object({
  email: z.string().trim().min(1, 'account.email.required').max(320, 'account.email.tooLong').pipe(z.email('account.email.invalid')),
});

const TOKEN = /^[A-Za-z0-9_-]{43}$/;

function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  renderPage(deps, ctx, 'account/email.njk', 'profile', { email: ctx.state.user.email, newEmail: '', ...vars }, status);
}

export function showEmailForm(deps: AccountDeps) {
  return async function emailPage(ctx: AccountContext) {
    show(deps, ctx);
  };
}

export function requestEmailChange(deps: AccountDeps) {
  return async function askForEmailChange(ctx: AccountContext) {
    const { user } = ctx.state;
    const parsed = emailForm.safeParse(ctx.state.form);
    if (!parsed.success) {
      return show(deps, ctx, { newEmail: (ctx.state.form.email ?? '').slice(0, 320), error: firstProblem(deps, parsed.error.issues) }, 400);
    }
    const newEmail = parsed.data.email;
    if (normalizeEmail(newEmail) === normalizeEmail(user.email)) {
      return show(deps, ctx, { newEmail, error: deps.render.t('account.email.same') }, 400);
    }
    // Each request mails an address the user typed: a few an hour, so nobody's inbox can be flooded from here.
    if (!(await deps.store.counters.take(`mail:email-change:${user.id}`, EMAIL_CHANGE_MAILS_PER_HOUR, 3600))) {
      return show(deps, ctx, { newEmail, error: deps.render.t('account.email.tooMany') }, 429);
    }
    const token = await deps.store.codes.issue('email_change', user.id, EMAIL_CHANGE_TTL_SECONDS, { email: newEmail, from: user.email });
    // To the new address, in the user's language like every mail to them.
    await deps.mailer.send(newEmail, 'confirm-email-change', {
      newEmail, link: `${deps.config.issuer}/account/email/confirm?token=${token}`,
    }, languageOf(user));
    await notify(deps, user, 'email-change-requested', { newEmail });
    await deps.events.record({ type: 'email.change_requested', userId: user.id, ...requestMeta(ctx), details: { newEmail } });
    show(deps, ctx, { sentTo: newEmail });
  };
}

function confirmPage(deps: AccountDeps, ctx: Context, vars: Record<string, unknown>, status = 200) {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = deps.render('account/email-confirm.njk', { csrf: deps.csrf.token(ctx), ...vars });
}

const linkDead = (deps: AccountDeps, ctx: Context) => confirmPage(deps, ctx, { error: deps.render.t('account.email.linkInvalid') }, 400);

/** GET: shows the address and a button; spends nothing. Works without being signed in (the link is the proof). */
export function showEmailConfirm(deps: AccountDeps) {
  return async function emailConfirmPage(ctx: Context) {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const live = TOKEN.test(token) ? await deps.store.codes.peek('email_change', token) : undefined;
    const email = live?.data?.email;
    if (!live || typeof email !== 'string') return linkDead(deps, ctx);
    confirmPage(deps, ctx, { token, newEmail: email });
  };
}

/** POST: spends the link and changes the address in one transaction. */
export function confirmEmailChange(deps: AccountDeps) {
  return async function changeEmail(ctx: AccountContext) {
    const token = ctx.state.form.token ?? '';
    if (!TOKEN.test(token)) return linkDead(deps, ctx);
    let changed;
    try {
      changed = await deps.store.changeEmailWithToken(token);
    } catch (err) {
      if (!(err instanceof DuplicateEmailError)) throw err;
      return confirmPage(deps, ctx, { error: deps.render.t('account.email.taken') }, 409);
    }
    if (!changed) return linkDead(deps, ctx);
    const { user, email } = changed;
    await deps.events.record({ type: 'email.changed', userId: user.id, ...requestMeta(ctx), details: { from: user.email, to: email } });
    // To the old address (`user` is the account before the change).
    await notify(deps, user, 'email-changed', { oldEmail: user.email, newEmail: email });
    confirmPage(deps, ctx, { done: true, newEmail: email });
  };
}
