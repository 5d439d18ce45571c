/**
 * Signing out of the account page: its own session ends here, then the browser goes through the provider's
 * RP-initiated logout for the account client (which asks the user to confirm, ends the provider session and
 * comes back to /account).
 */
import { ACCOUNT_APP, homeUri } from '../first-party/app.ts';
import type { AccountContext, AccountDeps } from './context.ts';
import { endAccountSession } from './session.ts';

export function signOut(deps: AccountDeps) {
  return async function signOutOfAccount(ctx: AccountContext) {
    await endAccountSession(deps, ctx);
    const url = new URL(`${deps.config.issuer}/session/end`);
    url.search = new URLSearchParams({ client_id: ACCOUNT_APP.clientId, post_logout_redirect_uri: homeUri(deps.config, ACCOUNT_APP) }).toString();
    ctx.status = 303;
    ctx.redirect(url.toString());
  };
}
