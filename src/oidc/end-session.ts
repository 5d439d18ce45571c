/**
 * Ending a session, or an app's access, from outside oidc-provider's own endpoints (the account page's
 * "sign out" of another session, "sign out my other sessions", "Remove access"). It does what oidc-provider's
 * logout does: back-channel logout tokens to the apps of the session, its grants revoked unless they outlive
 * logout (offline access), the Session row destroyed.
 */
import type Provider from 'oidc-provider';
import type { Logger } from '../log.ts';

type Session = NonNullable<Awaited<ReturnType<Provider['Session']['findByUid']>>>;
/** oidc-provider's Client has this method; its type definitions do not list it. */
type BackchannelClient = { backchannelLogout(sub: string, sid: string): Promise<void> };

/** Revokes a grant and every token and code issued under it: a refresh token stops working at once. */
export async function revokeGrant(provider: Provider, grantId: string): Promise<void> {
  await Promise.all([
    provider.AccessToken.revokeByGrantId(grantId),
    provider.RefreshToken.revokeByGrantId(grantId),
    provider.AuthorizationCode.revokeByGrantId(grantId),
    provider.DeviceCode.revokeByGrantId(grantId),
    provider.BackchannelAuthenticationRequest.revokeByGrantId(grantId),
  ]);
  await provider.Grant.adapter.destroy(grantId);
}

/** Ends one oidc-provider session as a logout would. */
export async function endSession(provider: Provider, session: Session, log: Logger): Promise<void> {
  const authorizations = session.authorizations ?? {};
  const deliveries: Promise<void>[] = [];
  for (const [clientId, authorization] of Object.entries(authorizations)) {
    const client = await provider.Client.find(clientId).catch(() => undefined);
    if (client?.backchannelLogoutUri && session.accountId) {
      const { accountId } = session;
      deliveries.push(
        (client as unknown as BackchannelClient).backchannelLogout(accountId, authorization.sid ?? '').then(
          () => undefined,
          (err: unknown) => log.warn({ err: (err as Error).message, client: clientId }, 'back-channel logout failed'),
        ),
      );
    }
    if (authorization.grantId && !authorization.persistsLogout) await revokeGrant(provider, authorization.grantId);
  }
  await Promise.all(deliveries);
  await session.destroy();
}
