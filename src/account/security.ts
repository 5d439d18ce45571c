/**
 * "Password & security": the password, the two-step verification methods (two-step.ts adds, renames and
 * removes them), and the verification preference: verify at every sign-in, or only when a sign-in looks
 * risky (the default). Changing the preference needs a recent sign-in and mails the user; "every sign-in"
 * needs a method that gives mfa (an authenticator app, a phone, …).
 */
import { z } from 'zod';
import type { VerificationPreference } from '../store/users.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { notify } from './notify.ts';
import { doneRedirect, renderPage } from './page.ts';
import { securityOverview } from './two-step.ts';
import { hereOf } from '../security/device.ts';
import { appsJustSignedOut } from './end-sessions.ts';

const PREFERENCES: readonly VerificationPreference[] = ['always', 'risky'];

const preferenceForm = z.object({
  preference: z.enum(['always', 'risky'], { message: 'account.verification.invalid' }),
});

export function showSecurity(deps: AccountDeps) {
  return async function securityPage(ctx: AccountContext) {
    renderPage(deps, ctx, 'account/security.njk', 'security', {
      ...(await securityOverview(deps, ctx.state.user, hereOf(deps.config, ctx))),
      preference: ctx.state.user.verificationPreference,
      appsSignedOut: await appsJustSignedOut(deps, ctx.state.user.id, ctx.query.done),
    });
  };
}

function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  renderPage(deps, ctx, 'account/verification.njk', 'security', {
    preferences: PREFERENCES, preference: ctx.state.user.verificationPreference, ...vars,
  }, status);
}

export function showVerification(deps: AccountDeps) {
  return async function verificationPage(ctx: AccountContext) {
    show(deps, ctx);
  };
}

export function saveVerification(deps: AccountDeps) {
  return async function savePreference(ctx: AccountContext) {
    const parsed = preferenceForm.safeParse(ctx.state.form);
    if (!parsed.success) return show(deps, ctx, { error: deps.render.t('account.verification.invalid') }, 400);
    const { user } = ctx.state;
    const { preference } = parsed.data;
    // "Every sign-in" means mfa at every sign-in: it needs a method that gives mfa.
    if (preference === 'always' && !(await securityOverview(deps, user)).hasPossession) {
      return show(deps, ctx, { preference, error: deps.render.t('account.verification.needsPossession') }, 400);
    }
    if (preference !== user.verificationPreference) {
      await deps.store.users.setVerificationPreference(user.id, preference);
      await deps.events.record({ type: 'verification.changed', userId: user.id, ...requestMeta(ctx), details: { from: user.verificationPreference, to: preference } });
      await notify(deps, user.email, 'verification-changed', { preference: deps.render.t(`account.verification.${preference}`) });
    }
    doneRedirect(deps, ctx, '/account/security', 'verification');
  };
}
