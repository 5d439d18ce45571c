/**
 * The hosted account page is a first-party client of the provider: registered statically at start-up (so
 * every instance has it, with nothing in the database), confidential, authorization code only, and without
 * a consent screen: its grant (`openid`, nothing else) is implied. Every other client keeps the normal consent.
 */
import { createHmac } from 'node:crypto';
import type { ClientMetadata, KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';

export const ACCOUNT_CLIENT_ID = 'latchkey-account';

/** The only scope the account page asks for: it reads the account from Latchkey's own store. */
export const ACCOUNT_SCOPE = 'openid';

export const accountCallbackUri = (config: Config) => `${config.issuer}/account/callback`;
export const accountHomeUri = (config: Config) => `${config.issuer}/account`;

/** Derived, never stored: every instance computes the same secret from the cookie key. */
export function accountClientSecret(config: Config): string {
  return createHmac('sha256', config.secrets.cookieKeys[0]!).update('latchkey:account-client-secret').digest('base64url');
}

export function accountClientMetadata(config: Config, name: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_secret: accountClientSecret(config),
    client_name: name,
    application_type: 'web',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [accountCallbackUri(config)],
    post_logout_redirect_uris: [accountHomeUri(config)],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: ACCOUNT_SCOPE,
  };
}

/**
 * oidc-provider's `loadExistingGrant`: the default behaviour (the grant consented to in this session) for
 * every client, and for the account client alone a grant made on the spot, so it never sees a consent page.
 */
export async function loadExistingGrant(ctx: KoaContextWithOIDC) {
  const { oidc } = ctx;
  const clientId = oidc.client!.clientId;
  const session = oidc.session!;
  const grantId = oidc.result?.consent?.grantId || session.grantIdFor(clientId);
  const existing = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (clientId !== ACCOUNT_CLIENT_ID) return existing;
  if (existing && existing.accountId === session.accountId && existing.clientId === clientId) return existing;
  const grant = new oidc.provider.Grant({ clientId, accountId: session.accountId! });
  grant.addOIDCScope(ACCOUNT_SCOPE);
  await grant.save();
  return grant;
}
