/**
 * RP-initiated logout without the "Sign out?" question when the request proves the user's own app asks:
 * a valid `id_token_hint` (oidc-provider has checked its signature and audience before this runs) whose
 * subject is the one signed in here. Then the session ends at once, as the confirm step would have ended
 * it with "Yes, sign me out": back-channel logouts, the grants that do not outlive a logout revoked, the
 * session destroyed and its cookie cleared, and the browser sent where the app asked (with its `state`) or
 * to "You're signed out". Anything else (no hint, a hint for someone else) still asks, so a link on another
 * site cannot sign anyone out.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from '../log.ts';
import { endSession } from './end-session.ts';

type CookieOptions = Parameters<KoaContextWithOIDC['cookies']['set']>[2];
type Session = Parameters<typeof endSession>[1];

export async function signOutAtOnce(ctx: KoaContextWithOIDC, log: Logger, sessionCookie: CookieOptions): Promise<boolean> {
  const { oidc } = ctx;
  const session = oidc.session;
  const hint = (oidc.entities as { IdTokenHint?: { payload?: { sub?: unknown } } }).IdTokenHint;
  if (!session?.accountId || !hint || hint.payload?.sub !== session.accountId) return false;
  const { state, postLogoutRedirectUri, clientId } = (session.state ?? {}) as { state?: string; postLogoutRedirectUri?: string; clientId?: string };
  await endSession(oidc.provider, session as unknown as Session, log);
  ctx.cookies.set(oidc.provider.cookieName('session'), null, sessionCookie);
  const target = new URL(postLogoutRedirectUri ?? oidc.urlFor('end_session_success'));
  if (postLogoutRedirectUri && state != null) target.searchParams.set('state', state);
  if (!postLogoutRedirectUri && clientId) target.searchParams.set('client_id', clientId);
  ctx.status = 303;
  ctx.redirect(target.toString());
  return true;
}
