/**
 * "Password & security" (security-page.ts says what it shows; two-step.ts adds, renames and removes the
 * methods) and the verification preference, chosen at the top of that page: verify at every sign-in, or
 * only when a sign-in looks risky (the default). Changing the preference needs a recent sign-in and mails
 * the user; "every sign-in" needs a method that gives mfa (an authenticator app, a phone, …). The same
 * choice on a page of its own (/account/verification) is where a change that needed a new sign-in comes back to.
 */
import { z } from 'zod';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { notify } from './notify.ts';
import { doneRedirect, renderPage } from './page.ts';
import { hasPossession, PREFERENCES, renderSecurityPage } from './security-page.ts';
import { appsJustSignedOut } from './end-sessions.ts';

const preferenceForm = z.object({
  preference: z.enum(['always', 'risky'], { message: 'account.verification.invalid' }),
});

export function showSecurity(deps: AccountDeps) {
  return async function securityPage(ctx: AccountContext) {
    await renderSecurityPage(deps, ctx, { appsSignedOut: await appsJustSignedOut(deps, ctx.state.user.id, ctx.query.done) });
  };
}

/** GET /account/verification: the choice alone (after signing in again to save it). */
export function showVerification(deps: AccountDeps) {
  return async function verificationPage(ctx: AccountContext) {
    renderPage(deps, ctx, 'account/verification.njk', 'security', { preferences: PREFERENCES, preference: ctx.state.user.verificationPreference });
  };
}

/** POST /account/verification; a refusal is shown on "Password & security", next to the choice, with the option chosen. */
export function saveVerification(deps: AccountDeps) {
  return async function savePreference(ctx: AccountContext) {
    const refuse = (error: string, preference?: string) => renderSecurityPage(deps, ctx, { preferenceError: deps.render.t(error), ...(preference && { preference }) }, 400);
    const parsed = preferenceForm.safeParse(ctx.state.form);
    if (!parsed.success) return refuse('account.verification.invalid');
    const { user } = ctx.state;
    const { preference } = parsed.data;
    // "Every sign-in" means mfa at every sign-in: it needs a method that gives mfa.
    if (preference === 'always' && !(await hasPossession(deps, user))) {
      return refuse('account.verification.needsPossession', preference);
    }
    if (preference !== user.verificationPreference) {
      await deps.store.users.setVerificationPreference(user.id, preference);
      await deps.events.record({ type: 'verification.changed', userId: user.id, ...requestMeta(ctx), details: { from: user.verificationPreference, to: preference } });
      await notify(deps, user, 'verification-changed', () => ({ preference: deps.render.t(`account.verification.${preference}`) }));
    }
    doneRedirect(deps, ctx, '/account/security', 'verification');
  };
}
