/**
 * The oidc-provider configuration: what Latchkey speaks of the protocol. Discovery advertises exactly
 * what is enabled here; implicit flows, the password grant and `alg: none` are off.
 */
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { ADMIN_API_SCOPES, adminApiAlg, adminApiResource, STEP_UP_ACTION_PARAM } from './admin-api.ts';
import type { Config } from '../config.ts';
import type { Render } from '../http/render.ts';
import { preferUiLocales, supportedLanguages } from '../i18n.ts';
import { isAcr, LEVELS } from '../security/level.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import { clientMetadata, FIRST_PARTY_APPS } from '../first-party/app.ts';
import { existingGrantLoader } from './existing-grant.ts';
import { signOutAtOnce } from './logout.ts';
import { createAdapterClass, revokedGrantSeconds, takeAccountRead } from './adapter.ts';
import { protocolErrorPage, unknownPaths } from './error-page.ts';
import { accountClaims, SCOPE_CLAIMS } from './claims.ts';
import { buildPolicy } from './policy.ts';
import { recordSessionActivity } from './session-activity.ts';
import { acceptPreviousSecret } from './client-secret.ts';
import { cibaFeature, cibaProtocol, cibaTtl } from './ciba.ts';
import type { PushSender } from '../delivery/push.ts';
import type { GeoIp } from '../geoip.ts';

export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;

export interface ProviderDeps {
  config: Config;
  store: Store;
  render: Render;
  log: Logger;
  jwks: { keys: Record<string, unknown>[] };
  /** For CIBA's prompts (oidc/ciba.ts); a provider made only to validate clients (the CLI) goes without. */
  push?: PushSender | undefined;
  geoip?: GeoIp | undefined;
}

const clientName = (ctx: KoaContextWithOIDC) => {
  const c = ctx.oidc.client;
  return c ? (c.clientName ?? c.clientId) : undefined;
};

export function createProvider({ config, store, render, log, jwks, push, geoip }: ProviderDeps): Provider {
  const resourceScopes = Object.values(config.resources).flatMap((r) => r.scope.split(' '));
  const longCookie = { signed: true, httpOnly: true, sameSite: 'lax' } as const;
  const configuration: Configuration = {
    adapter: createAdapterClass(store, revokedGrantSeconds(config)),
    jwks: jwks as Configuration['jwks'],
    // Latchkey's own apps (the hosted account page): first-party clients, with their grant implied (no consent page).
    clients: FIRST_PARTY_APPS.map((app) => clientMetadata(config, app, render.t(app.nameKey, { product: config.productName }))),
    // The session's grant plus remembered consent; implied for first-party apps (existing-grant.ts).
    loadExistingGrant: existingGrantLoader(store),
    cookies: {
      keys: [...config.secrets.cookieKeys],
      long: { ...longCookie },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    acrValues: [...LEVELS],
    scopes: ['openid', 'offline_access', 'profile', 'email', 'phone', 'address', ...resourceScopes, ...ADMIN_API_SCOPES],
    // The admin console's step-up names the action it is for (interaction pages show it for the console only).
    extraParams: [STEP_UP_ACTION_PARAM],
    claims: Object.fromEntries(Object.entries(SCOPE_CLAIMS).map(([k, v]) => [k, [...v]])),
    responseTypes: ['code'],
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: 'RS256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      requestObjectSigningAlgValues: ['HS256', ...SIGNING_ALGS],
      clientAuthSigningAlgValues: ['HS256', ...SIGNING_ALGS],
      // Ed25519 is EdDSA's fully-specified name (RFC 9864); current clients (openid-client 6) sign DPoP proofs with it.
      dPoPSigningAlgValues: ['ES256', 'Ed25519', 'EdDSA', 'RS256', 'PS256'],
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'none'],
    allowOmittingSingleRegisteredRedirectUri: false,
    // PKCE (S256) from every client, confidential ones too (RFC 9700 §2.1.1): a stolen or injected code is
    // useless without the verifier. An old app that cannot send it is registered with --no-pkce
    // (pkce_optional); a public client never can be.
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' || client.metadata().pkce_optional !== true },
    extraClientMetadata: {
      properties: ['minimum_acr', 'resource_server', 'pkce_optional', 'first_party'],
      validator(_ctx, key, value) {
        if ((key === 'resource_server' || key === 'pkce_optional' || key === 'first_party') && value !== undefined && typeof value !== 'boolean') {
          throw new errors.InvalidClientMetadata(`${key} must be a boolean`);
        }
        if (key === 'minimum_acr' && value !== undefined && !isAcr(value)) {
          throw new errors.InvalidClientMetadata(`minimum_acr must be one of ${LEVELS.join(', ')}`);
        }
      },
    },
    async findAccount(_ctx, sub) {
      // A refresh or userinfo request read the account with its token (adapter.ts): no second statement.
      const read = takeAccountRead(sub);
      const user = read ? read.user : await store.users.findById(sub);
      // A help-desk reset waiting for its mailed link (recoveryPendingAt): no token or userinfo for the account.
      if (!user || user.status !== 'active' || user.recoveryPendingAt) return undefined;
      return { accountId: user.id, claims: async () => accountClaims(user) };
    },
    interactions: {
      policy: buildPolicy(),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // A client learns about its own tokens; only a client registered as a resource server
        // (`clients add --resource-server`) may introspect tokens issued to others.
        // A token of a disabled client (one oidc-provider no longer finds) is inactive, whoever asks.
        allowedPolicy: async (ctx, client, token) => (token.clientId === client.clientId || client.metadata().resource_server === true)
          && (await ctx.oidc.provider.Client.find(token.clientId as string)) !== undefined,
      },
      revocation: {
        enabled: true,
        // A client may revoke only its own tokens (RFC 7009); the same rule as oidc-provider's default, stated here.
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      userinfo: { enabled: true },
      claimsParameter: { enabled: true },
      backchannelLogout: { enabled: true },
      // CIBA on the phone app's approval, poll and ping, confidential clients only (oidc/ciba.ts).
      ciba: cibaFeature({ config, store, log, push, geoip }),
      pushedAuthorizationRequests: { enabled: true },
      dPoP: { enabled: true },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        async userCodeInputSource(ctx, form, _out, err) {
          let error: string | undefined;
          if (err && ('userCode' in err || err.name === 'NoCodeError')) error = render.t('device.wrongCode');
          else if (err && err.name === 'AbortedError') error = render.t('device.aborted');
          else if (err) error = render.t('device.failed');
          ctx.type = 'html';
          ctx.body = render('provider/device-input.njk', { form, error });
        },
        async userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
          ctx.type = 'html';
          ctx.body = render('provider/device-confirm.njk', { form, clientName: client.clientName ?? client.clientId, userCode });
        },
        async successSource(ctx) {
          ctx.type = 'html';
          ctx.body = render('provider/device-done.njk', { clientName: clientName(ctx) });
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // The user's own app with a valid id_token_hint signs out without a question (logout.ts).
          if (await signOutAtOnce(ctx, log, longCookie)) return;
          preferUiLocales(ctx.oidc.params?.ui_locales);
          ctx.type = 'html';
          ctx.body = render('provider/logout.njk', { form, clientName: clientName(ctx) });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = render('provider/logout-done.njk', { clientName: clientName(ctx) });
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined as unknown as string,
        useGrantedResource: () => true,
        async getResourceServerInfo(_ctx, indicator, client) {
          if (indicator === adminApiResource(config)) {
            // Only the admin scopes the client was registered for (`clients add --scope`); none: no token at all.
            const registered = new Set(String(client.metadata().scope ?? '').split(' '));
            const scope = ADMIN_API_SCOPES.filter((s) => registered.has(s)).join(' ');
            if (!scope) throw new errors.InvalidTarget('this client is not registered for the admin API');
            return {
              scope, audience: indicator, accessTokenTTL: config.adminApi.tokenSeconds,
              accessTokenFormat: 'jwt', jwt: { sign: { alg: adminApiAlg(config) } },
            };
          }
          const server = config.resources[indicator];
          if (!server) throw new errors.InvalidTarget('unknown resource indicator');
          return {
            scope: server.scope,
            audience: indicator,
            accessTokenTTL: server.accessTokenTTL ?? config.ttl.accessToken,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: server.jwtAlg ?? 'ES256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: config.ttl.accessToken,
      AuthorizationCode: config.ttl.authorizationCode,
      BackchannelAuthenticationRequest: cibaTtl(config),
      ClientCredentials: config.ttl.clientCredentials,
      DeviceCode: config.ttl.deviceCode,
      Grant: config.ttl.grant,
      IdToken: config.ttl.idToken,
      Interaction: config.ttl.interaction,
      RefreshToken: config.ttl.refreshToken,
      Session: config.ttl.session,
    },
    // oidc-provider's only outgoing requests here are back-channel logouts and CIBA pings to admin-registered URIs. It hands
    // fetch an SSRF-guarded dispatcher that refuses special-use addresses; the opt-in drops it for them.
    ...(config.backchannelLogout.allowPrivateNetwork
      ? {
          fetch: (url: string | URL | Request, options?: RequestInit) => {
            const { dispatcher: _ssrfGuard, ...rest } = (options ?? {}) as RequestInit & { dispatcher?: unknown };
            return fetch(url, rest);
          },
        }
      : {}),
    renderError: protocolErrorPage(render, log, config.productName),
    // The languages of locales/: an app's ui_locales picks among them (http/language.ts).
    discovery: { claim_types_supported: ['normal'], ui_locales_supported: [...supportedLanguages()] },
  };

  const provider = new Provider(config.issuer, configuration);
  // X-Forwarded-* headers reach the provider only from trusted proxies (http/proxy.ts strips the rest).
  provider.proxy = true;
  provider.use(unknownPaths(render));
  // A rotated-out client secret keeps working until its grace period ends (client-secret.ts).
  acceptPreviousSecret(provider, store);
  provider.use(cibaProtocol(store));
  provider.on('server_error', (_ctx, err) => log.error({ err }, 'oidc-provider server error'));
  recordSessionActivity(provider, { config, store, log });
  provider.on('backchannel.error', (_ctx: unknown, err: Error, client: { clientId: string }, _accountId: string, sid: string) =>
    log.warn({ err: err.message, client: client.clientId, sid }, 'back-channel logout failed'));
  return provider;
}
