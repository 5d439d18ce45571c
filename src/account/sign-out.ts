/**
 * Signing out of the account page, at once (the POST carries the page's CSRF token, so no second "Sign
 * out?" question): the account session ends, and so does the provider session it was signed in from, as
 * a logout would (back-channel logouts, the grants that do not outlive a logout revoked). The browser
 * lands on "You're signed out". Without a live account session, the provider's own logout (which asks) is
 * the way out.
 */
import { ACCOUNT_APP, homeUri } from '../first-party/app.ts';
import { endSession } from '../oidc/end-session.ts';
import type { AccountContext, AccountDeps } from './context.ts';
import { endAccountSession } from './session.ts';

export function signOut(deps: AccountDeps) {
  return async function signOutOfAccount(ctx: AccountContext) {
    const ended = await endAccountSession(deps, ctx);
    ctx.status = 303;
    if (!ended) {
      const url = new URL(`${deps.config.issuer}/session/end`);
      url.search = new URLSearchParams({ client_id: ACCOUNT_APP.clientId, post_logout_redirect_uri: homeUri(deps.config, ACCOUNT_APP) }).toString();
      return ctx.redirect(url.toString());
    }
    const provider = deps.provider();
    const session = await provider.Session.findByUid(ended.oidcSessionUid);
    if (session && session.accountId === ended.userId) await endSession(provider, session, deps.log);
    await deps.store.accountSessions.deleteForOidcSessions(ended.userId, [ended.oidcSessionUid]);
    ctx.redirect(`${deps.config.issuer}/session/end/success`);
  };
}
