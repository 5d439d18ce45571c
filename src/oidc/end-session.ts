/**
 * Ending a session, or an app's access, from outside oidc-provider's own endpoints (the account page's
 * "sign out" of another session, "sign out my other sessions", "Remove access"). It does what oidc-provider's
 * logout does: back-channel logout tokens to the apps of the session, its grants revoked, the Session row
 * destroyed; and, asked by the user, also the grants that outlive a logout (offline access).
 */
import type Provider from 'oidc-provider';
import type { Logger } from '../log.ts';
import type { Payload } from '../store/oidc-payloads.ts';

type Session = NonNullable<Awaited<ReturnType<Provider['Session']['findByUid']>>>;
/** oidc-provider's Client has this method; its type definitions do not list it. */
type BackchannelClient = { backchannelLogout(sub: string, sid: string): Promise<void> };

/**
 * Revokes a grant and every token and code issued under it: a refresh token stops working at once. The
 * adapter does it all in the grant's destroy (oidc/adapter.ts): it marks the grant revoked, so a token a
 * parallel request is still issuing under it is refused too.
 */
export async function revokeGrant(provider: Provider, grantId: string): Promise<void> {
  await provider.Grant.adapter.destroy(grantId);
}

/** A session's per-app authorizations, as oidc-provider stores them (model or raw payload alike). */
export type Authorizations = Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>;

/**
 * Sends a back-channel logout token to every app of an ended session that registered a URI. Failures are
 * logged, never thrown: the session is over whether or not an app was reachable.
 */
export async function sendBackchannelLogouts(provider: Provider, accountId: string, authorizations: Authorizations, log: Logger): Promise<void> {
  await Promise.all(Object.entries(authorizations).map(async ([clientId, { sid }]) => {
    const client = await provider.Client.find(clientId).catch(() => undefined);
    if (!client?.backchannelLogoutUri || !sid) return;
    await (client as unknown as BackchannelClient).backchannelLogout(accountId, sid).catch((err: unknown) =>
      log.warn({ err: (err as Error).message, client: clientId, sid }, 'back-channel logout failed'));
  }));
}

/** Back-channel logout for every app that took part in sessions ended in the store (a reset, "This wasn't me", disabling a user). */
export async function logOutEndedSessions(provider: Provider, accountId: string, sessions: readonly Payload[], log: Logger): Promise<void> {
  for (const session of sessions) await sendBackchannelLogouts(provider, accountId, (session.authorizations ?? {}) as Authorizations, log);
}

/**
 * Ends one oidc-provider session as a logout would. `endOfflineGrants` (the user ending a session from the
 * account page, or a password change signing out the others) also revokes the grants that outlive a
 * logout: whoever held that session keeps no refresh token. Returns the apps whose grants were revoked.
 */
export async function endSession(provider: Provider, session: Session, log: Logger, opts: { endOfflineGrants?: boolean } = {}): Promise<string[]> {
  const authorizations: Authorizations = session.authorizations ?? {};
  if (session.accountId) await sendBackchannelLogouts(provider, session.accountId, authorizations, log);
  const revoked: string[] = [];
  for (const [clientId, authorization] of Object.entries(authorizations)) {
    if (!authorization.grantId || (authorization.persistsLogout && !opts.endOfflineGrants)) continue;
    await revokeGrant(provider, authorization.grantId);
    revoked.push(clientId);
  }
  await session.destroy();
  return revoked;
}
