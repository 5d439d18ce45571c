/**
 * The hosted account page, read as a table: each route is an ordered list of named steps.
 *
 *   signedIn      the account session (bound to a live provider session) and its user, or sign in and come back
 *   form          the POST body, with its CSRF token and Origin checked (before anything else happens)
 *   recent(page)  a sign-in at most account.recentAuthSeconds old at the highest level the user can reach,
 *                 or re-authenticate (max_age + acr_values) and come back to `page`
 */
import Router from '@koa/router';
import { showActivity } from './activity.ts';
import { removeApp, showApps } from './apps.ts';
import { ACCOUNT_APP } from '../first-party/app.ts';
import { firstPartyCallback } from '../first-party/callback.ts';
import type { AccountDeps } from './context.ts';
import { confirmEmailChange, requestEmailChange, showEmailConfirm, showEmailForm } from './email.ts';
import { checkedForm } from '../http/csrf.ts';
import { changePassword, showPasswordForm } from './password.ts';
import { saveProfile, showProfile } from './profile.ts';
import { requireRecentAuth } from './recent-auth.ts';
import { saveVerification, showSecurity, showVerification } from './security.ts';
import { beginAccountSession, requireAccount } from './session.ts';
import { showSessions, signOutOthers, signOutSession } from './sessions.ts';
import { signOut } from './sign-out.ts';
import { enrolStatus, finishEnrol, passkeysOff, removeMethod, renameMethod, showEnrol } from './two-step.ts';
import { forgetDevice, showDevices } from './devices.ts';

export function accountRoutes(deps: AccountDeps): Router {
  const router = new Router({ prefix: '/account' });
  const signedIn = requireAccount(deps);
  const form = checkedForm(deps.csrf);
  const recent = (page: Parameters<typeof requireRecentAuth>[1]) => requireRecentAuth(deps, page);

  router.get('/callback', firstPartyCallback(deps, ACCOUNT_APP, {
    signedIn: (ctx, signIn) => beginAccountSession(deps, ctx, signIn),
    failed(ctx, reason) {
      ctx.type = 'html';
      ctx.body = deps.render('account/sign-in-failed.njk', { message: deps.render.t(`account.signInFailed.${reason}`) });
    },
  }));

  router.get('/', signedIn, showProfile(deps));
  router.post('/profile', form, signedIn, saveProfile(deps));
  router.get('/email', signedIn, recent('/account/email'), showEmailForm(deps));
  router.post('/email', form, signedIn, recent('/account/email'), requestEmailChange(deps));
  // The link from the email: the link itself is the proof, so no account session is needed.
  router.get('/email/confirm', showEmailConfirm(deps));
  router.post('/email/confirm', form, confirmEmailChange(deps));

  router.get('/security', signedIn, showSecurity(deps));
  router.get('/password', signedIn, recent('/account/password'), showPasswordForm(deps));
  router.post('/password', form, signedIn, recent('/account/password'), changePassword(deps));
  router.get('/verification', signedIn, recent('/account/verification'), showVerification(deps));
  router.post('/verification', form, signedIn, recent('/account/verification'), saveVerification(deps));

  // Back to the same page after signing in again (sign-in.ts keeps only /account/… paths).
  const enrolPage = (ctx: { path: string }) => ctx.path;
  router.get('/two-step/:kind', signedIn, recent(enrolPage), showEnrol(deps));
  router.get('/two-step/:kind/status', signedIn, enrolStatus(deps));
  router.post('/two-step/remove', form, signedIn, recent('/account/security'), removeMethod(deps));
  router.post('/two-step/rename', form, signedIn, recent('/account/security'), renameMethod(deps));
  router.post('/two-step/:kind', form, signedIn, recent(enrolPage), finishEnrol(deps));
  router.post('/passkeys/off', form, signedIn, recent('/account/security'), passkeysOff(deps));

  router.get('/devices', signedIn, showDevices(deps));
  router.post('/devices/forget', form, signedIn, forgetDevice(deps));

  router.get('/sessions', signedIn, showSessions(deps));
  router.post('/sessions/sign-out', form, signedIn, signOutSession(deps));
  router.post('/sessions/sign-out-others', form, signedIn, signOutOthers(deps));

  router.get('/apps', signedIn, showApps(deps));
  router.post('/apps/remove', form, signedIn, removeApp(deps));

  router.get('/activity', signedIn, showActivity(deps));

  router.post('/sign-out', form, signOut(deps));
  return router;
}
