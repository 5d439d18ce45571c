/**
 * Latchkey's own apps (first-party clients of its provider): the hosted account page and the admin
 * console. Each is registered statically at start-up (every instance has it, nothing in the
 * database), confidential with a secret derived from the cookie key, authorization code only, mounted at
 * its own path with its own cookies, and signs in without a consent screen: its grant (its scope, nothing
 * else) is implied. Every other client keeps the normal consent.
 */
import { createHmac } from 'node:crypto';
import type { ClientMetadata } from 'oidc-provider';
import type { Config } from '../config.ts';

export interface FirstPartyApp {
  /** Short name: the secret's derivation and the cookie names use it ("account" -> lk.account). */
  readonly id: string;
  readonly clientId: string;
  /** Where it is mounted under the issuer ("/account"); its callback is <path>/callback. */
  readonly path: string;
  /** The scope it asks for; it reads everything else from Latchkey's own store. */
  readonly scope: string;
  /** The strings key of its name, as the consent-free sign-in and "Connected apps" show it. */
  readonly nameKey: string;
  /**
   * SameSite of its session cookie: Lax (the default) for the account page, where a link from a mail opens
   * it signed in; Strict for the console: no request another site starts carries an administrator's session.
   */
  readonly sessionSameSite?: 'lax' | 'strict';
}

export const ACCOUNT_APP: FirstPartyApp = {
  id: 'account', clientId: 'latchkey-account', path: '/account', scope: 'openid', nameKey: 'account.clientName',
};

/** The admin console (src/console/). */
export const ADMIN_APP: FirstPartyApp = {
  id: 'admin', clientId: 'latchkey-admin', path: '/admin', scope: 'openid', nameKey: 'console.clientName', sessionSameSite: 'strict',
};

/** Every first-party app the provider registers. */
export const FIRST_PARTY_APPS: readonly FirstPartyApp[] = [ACCOUNT_APP, ADMIN_APP];

export const isFirstParty = (clientId: unknown) => FIRST_PARTY_APPS.some((app) => app.clientId === clientId);

export const callbackUri = (config: Config, app: FirstPartyApp) => `${config.issuer}${app.path}/callback`;
export const homeUri = (config: Config, app: FirstPartyApp) => `${config.issuer}${app.path}`;

/** Derived, never stored: every instance computes the same secret from the cookie key. */
export function clientSecret(config: Config, app: FirstPartyApp): string {
  return createHmac('sha256', config.secrets.cookieKeys[0]!).update(`latchkey:${app.id}-client-secret`).digest('base64url');
}

export function clientMetadata(config: Config, app: FirstPartyApp, name: string): ClientMetadata {
  return {
    client_id: app.clientId,
    client_secret: clientSecret(config, app),
    client_name: name,
    application_type: 'web',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: [callbackUri(config, app)],
    post_logout_redirect_uris: [homeUri(config, app)],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: app.scope,
  };
}
