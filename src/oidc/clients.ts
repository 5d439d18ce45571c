/**
 * Registering and editing clients: input validated into oidc-provider metadata, then checked by
 * oidc-provider's own client schema before it is stored. An edit is the stored client read back as input
 * (`inputOf`), changed, and validated by the very same steps. The secret is generated here, returned once
 * and sealed at rest.
 */
import { randomBytes } from 'node:crypto';
import { ADMIN_API_SCOPES } from './admin-api.ts';
import { operandSafeId } from './ids.ts';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { LEVELS, type Acr } from '../security/level.ts';
import type { Store } from '../store/index.ts';

export const GRANT_TYPES = [
  'authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba',
] as const;
export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
/** CIBA's token delivery modes (push, which would post tokens to the app, is not offered). */
export const CIBA_MODES = ['poll', 'ping'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'none'] as const;
export const ID_TOKEN_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Absolute, exact, https except on loopback; no wildcards, no fragment, no credentials. */
export function redirectUriProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (value.includes('*')) return 'must not contain wildcards';
  if (u.hash || value.includes('#')) return 'must not contain a fragment';
  if (u.username || u.password) return 'must not contain credentials';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return undefined;
  return 'must use https (http is allowed only for localhost, 127.0.0.1 and [::1])';
}

/** Where a ping-mode CIBA client is told a result is ready: https only, as CIBA §4 requires (and oidc-provider). */
export function notificationEndpointProblem(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (u.protocol !== 'https:') return 'must use https (CIBA requires it, on loopback too)';
  if (u.hash || value.includes('#')) return 'must not contain a fragment';
  if (u.username || u.password) return 'must not contain credentials';
  return undefined;
}

/** A scope token (RFC 6749 §3.3). */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;
const isAdminApiScope = (s: string) => (ADMIN_API_SCOPES as readonly string[]).includes(s);

const redirectUri = z.string().superRefine((v, ctx) => {
  const problem = redirectUriProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: `${v} ${problem}` });
});

export const clientInput = z
  .strictObject({
    name: z.string().trim().min(1, 'name is required').max(100, 'name is at most 100 characters'),
    redirectUris: z.array(redirectUri).max(20).default([]),
    postLogoutRedirectUris: z.array(redirectUri).max(20).default([]),
    backchannelLogoutUri: redirectUri.optional(),
    grantTypes: z.array(z.enum(GRANT_TYPES, { message: `grant type must be one of ${GRANT_TYPES.join(', ')}` })).min(1).optional(),
    public: z.boolean().default(false),
    authMethod: z.enum(AUTH_METHODS, { message: `auth method must be one of ${AUTH_METHODS.join(', ')}` }).optional(),
    idTokenAlg: z.enum(ID_TOKEN_ALGS, { message: `ID token algorithm must be one of ${ID_TOKEN_ALGS.join(', ')}` }).optional(),
    resourceServer: z.boolean().default(false),
    minimumAcr: z.enum(LEVELS as unknown as [Acr, ...Acr[]], { message: `minimum level must be one of ${LEVELS.join(', ')}` }).optional(),
    /** PKCE (S256) on every authorization request; false only for an old confidential app that cannot send it. */
    pkce: z.boolean().default(true),
    /** An app of the same operator: signs in without a consent page (its users' consent is implied). */
    firstParty: z.boolean().default(false),
    /** The app's logo (https, or http on loopback), for pages that name the app. */
    logoUri: redirectUri.optional(),
    /** With a back-channel logout URI: whether the logout token carries the session (`sid`); true by default. */
    backchannelLogoutSessionRequired: z.boolean().optional(),
    /** CIBA (with its grant type): how the app learns of the result, poll or ping. */
    cibaMode: z.enum(CIBA_MODES, { message: `CIBA mode must be one of ${CIBA_MODES.join(', ')}` }).optional(),
    /** CIBA ping mode: where the result's notification is posted (https). */
    cibaNotificationEndpoint: z.string().superRefine((v, ctx) => {
      const problem = notificationEndpointProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: `${v} ${problem}` });
    }).optional(),
    /**
     * The scopes the client may ask for (oidc-provider's `scope` metadata: an allow list of the scopes the
     * provider knows; without it, any). The admin API's scopes (`admin:…`) are given only this way, and
     * only to a client whose one grant is client_credentials.
     */
    scopes: z.array(z.string().regex(SCOPE_TOKEN, 'a scope is one token of printable characters, no spaces or quotes')).max(50).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.resourceServer && c.public) ctx.addIssue({ code: 'custom', message: 'a resource server must authenticate: not --public' });
    if (c.backchannelLogoutSessionRequired !== undefined && !c.backchannelLogoutUri) {
      ctx.addIssue({ code: 'custom', message: 'the back-channel logout session setting needs a back-channel logout URI' });
    }
    const grants = c.grantTypes ?? ['authorization_code', 'refresh_token'];
    const method = c.authMethod ?? (c.public ? 'none' : 'client_secret_basic');
    if (c.public && !c.pkce) ctx.addIssue({ code: 'custom', message: 'a public client must use PKCE: --no-pkce is only for confidential clients' });
    if (c.public && method !== 'none') ctx.addIssue({ code: 'custom', message: 'a public client has no secret, so its auth method is none' });
    if (!c.public && method === 'none') ctx.addIssue({ code: 'custom', message: 'auth method none needs --public' });
    if (method === 'none' && grants.includes('client_credentials')) {
      ctx.addIssue({ code: 'custom', message: 'client_credentials needs a confidential client (not --public)' });
    }
    if (grants.includes('authorization_code') && c.redirectUris.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'authorization_code needs at least one redirect URI' });
    }
    if (!grants.includes('authorization_code') && c.redirectUris.length > 0) {
      ctx.addIssue({ code: 'custom', message: 'redirect URIs are only used with authorization_code' });
    }
    if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.some((g) => g.endsWith('device_code')) && !grants.includes(CIBA_GRANT)) {
      ctx.addIssue({ code: 'custom', message: 'refresh_token needs authorization_code, device_code or the CIBA grant' });
    }
    if (grants.includes(CIBA_GRANT)) {
      // oidc-provider would take a public CIBA client; a back-channel request must come from an app that authenticates.
      if (method === 'none') ctx.addIssue({ code: 'custom', message: 'the CIBA grant needs a confidential client (not --public)' });
      if (!c.cibaMode) ctx.addIssue({ code: 'custom', message: 'the CIBA grant needs --ciba-mode poll or ping' });
      if (c.cibaMode === 'ping' && !c.cibaNotificationEndpoint) ctx.addIssue({ code: 'custom', message: 'CIBA ping mode needs --ciba-notification-endpoint (https)' });
      if (c.cibaMode === 'poll' && c.cibaNotificationEndpoint) ctx.addIssue({ code: 'custom', message: 'CIBA poll mode takes no notification endpoint' });
    } else if (c.cibaMode || c.cibaNotificationEndpoint) {
      ctx.addIssue({ code: 'custom', message: `--ciba-mode and --ciba-notification-endpoint need --grant-type ${CIBA_GRANT}` });
    }
    if (c.scopes?.some(isAdminApiScope) && (grants.length !== 1 || grants[0] !== 'client_credentials')) {
      ctx.addIssue({ code: 'custom', message: 'the admin API\'s scopes (admin:…) are for a client whose only grant type is client_credentials' });
    }
  });

export type ClientInput = z.input<typeof clientInput>;

export interface RegisteredClient {
  clientId: string;
  clientSecret: string | undefined;
  metadata: Record<string, unknown>;
}

export function toMetadata(input: z.output<typeof clientInput>): Record<string, unknown> {
  const grantTypes = input.grantTypes ?? ['authorization_code', 'refresh_token'];
  const method = input.authMethod ?? (input.public ? 'none' : 'client_secret_basic');
  return {
    client_name: input.name,
    application_type: 'web',
    grant_types: [...new Set(grantTypes)],
    response_types: grantTypes.includes('authorization_code') ? ['code'] : [],
    redirect_uris: input.redirectUris,
    post_logout_redirect_uris: input.postLogoutRedirectUris,
    token_endpoint_auth_method: method,
    id_token_signed_response_alg: input.idTokenAlg ?? 'RS256',
    ...(input.backchannelLogoutUri
      ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: input.backchannelLogoutSessionRequired ?? true }
      : {}),
    ...(input.logoUri ? { logo_uri: input.logoUri } : {}),
    ...(input.minimumAcr ? { minimum_acr: input.minimumAcr } : {}),
    ...(input.resourceServer ? { resource_server: true } : {}),
    ...(input.pkce ? {} : { pkce_optional: true }),
    ...(input.firstParty ? { first_party: true } : {}),
    ...(input.scopes?.length ? { scope: [...new Set(input.scopes)].join(' ') } : {}),
    ...(grantTypes.includes(CIBA_GRANT) ? {
      backchannel_token_delivery_mode: input.cibaMode,
      ...(input.cibaNotificationEndpoint ? { backchannel_client_notification_endpoint: input.cibaNotificationEndpoint } : {}),
      backchannel_user_code_parameter: false,
    } : {}),
  };
}

/** The stored metadata read back as the input that registers it (toMetadata's inverse). */
export function inputOf(name: string, m: Record<string, unknown>): ClientInput {
  const method = m.token_endpoint_auth_method as (typeof AUTH_METHODS)[number];
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const present = <K extends string, V>(key: K, v: V | undefined) => (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
  return {
    name,
    redirectUris: (m.redirect_uris as string[] | undefined) ?? [],
    postLogoutRedirectUris: (m.post_logout_redirect_uris as string[] | undefined) ?? [],
    ...present('backchannelLogoutUri', str(m.backchannel_logout_uri)),
    ...(m.backchannel_logout_uri ? { backchannelLogoutSessionRequired: m.backchannel_logout_session_required === true } : {}),
    grantTypes: m.grant_types as ClientInput['grantTypes'],
    public: method === 'none',
    authMethod: method,
    idTokenAlg: m.id_token_signed_response_alg as ClientInput['idTokenAlg'],
    resourceServer: m.resource_server === true,
    ...present('minimumAcr', str(m.minimum_acr) as Acr | undefined),
    pkce: m.pkce_optional !== true,
    firstParty: m.first_party === true,
    ...present('logoUri', str(m.logo_uri)),
    ...present('cibaMode', str(m.backchannel_token_delivery_mode) as (typeof CIBA_MODES)[number] | undefined),
    ...present('cibaNotificationEndpoint', str(m.backchannel_client_notification_endpoint)),
    ...present('scopes', str(m.scope)?.split(' ')),
  };
}

/** What an edit may change; null takes an optional setting away. Anything left out stays as it is. */
export type ClientChanges = Partial<Pick<ClientInput,
  'name' | 'redirectUris' | 'postLogoutRedirectUris' | 'grantTypes' | 'authMethod' | 'idTokenAlg' | 'firstParty' | 'backchannelLogoutSessionRequired'
>> & { minimumAcr?: ClientInput['minimumAcr'] | null; logoUri?: string | null; backchannelLogoutUri?: string | null; scopes?: string[] | null };

/**
 * The client's metadata after `changes`, validated exactly as a registration is (the same schema, then
 * oidc-provider's). A public client stays public and a confidential one confidential: its secret (or its
 * lack of one) is what its app holds, so that change is a new registration.
 */
export async function revisedClient(
  store: Store, provider: Provider, stored: { clientId: string; name: string; metadata: Record<string, unknown>; secret: string | undefined },
  changes: ClientChanges,
): Promise<{ name: string; metadata: Record<string, unknown> }> {
  const input: Record<string, unknown> = { ...inputOf(stored.name, stored.metadata) };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete input[key];
    else if (value !== undefined) input[key] = value;
  }
  // The session setting goes with the URI: taking the URI away takes it too.
  if (changes.backchannelLogoutUri === null && changes.backchannelLogoutSessionRequired === undefined) delete input.backchannelLogoutSessionRequired;
  // Grant types without CIBA take its delivery settings away (they would otherwise be refused as orphans).
  if (Array.isArray(changes.grantTypes) && !changes.grantTypes.includes(CIBA_GRANT)) {
    delete input.cibaMode;
    delete input.cibaNotificationEndpoint;
  }
  if (changes.authMethod !== undefined && (changes.authMethod === 'none') !== (stored.secret === undefined)) {
    throw new AppError('client.invalid', 400, stored.secret === undefined
      ? 'a public client has no secret, so its auth method stays none: register a confidential client instead'
      : 'a confidential client keeps a secret, so its auth method cannot become none: register a public client instead');
  }
  const { name, metadata } = await validated(store, provider, input as ClientInput, stored.clientId, () => stored.secret);
  return { name, metadata };
}

/**
 * The registration's checks: the input schema, oidc-provider's client schema (with the secret `secretFor`
 * gives the metadata), and an active key for its ID tokens.
 */
async function validated(
  store: Store, provider: Provider, raw: ClientInput, clientId: string, secretFor: (metadata: Record<string, unknown>) => string | undefined,
) {
  const parsed = clientInput.safeParse(raw);
  if (!parsed.success) {
    throw new AppError('client.invalid', 400, parsed.error.issues.map((i) => i.message).join('; '));
  }
  const metadata = toMetadata(parsed.data);
  const secret = secretFor(metadata);
  try {
    await provider.Client.validate({ ...metadata, client_id: clientId, ...(secret ? { client_secret: secret } : {}) } as never);
  } catch (err) {
    const e = err as { error_description?: string; message?: string };
    throw new AppError('client.invalid', 400, e.error_description ?? e.message ?? 'invalid client metadata');
  }
  // A retired key is still in oidc-provider's keystore (to verify what it signed), so oidc-provider takes its algorithm.
  const alg = metadata.id_token_signed_response_alg;
  if (!(await store.signingKeys.list()).some((k) => k.state === 'active' && k.alg === alg)) {
    throw new AppError('client.invalid', 400, `ID token algorithm ${String(alg)} has no active signing key (keys.algorithms names those kept active)`);
  }
  return { name: parsed.data.name, metadata, secret };
}

/** A new secret for a confidential client: 32 random bytes, base64url. */
export const newClientSecret = (): string => randomBytes(32).toString('base64url');

/** A new client_id: 128 random bits (oidc/ids.ts: never read as a CLI option). */
export const newClientId = (): string => operandSafeId(16);

export async function registerClient(store: Store, provider: Provider, raw: ClientInput): Promise<RegisteredClient> {
  const clientId = newClientId();
  const { name, metadata, secret } = await validated(store, provider, raw, clientId,
    (m) => (m.token_endpoint_auth_method === 'none' ? undefined : newClientSecret()));
  await store.clients.insert({ clientId, name, metadata, ...(secret ? { secret } : {}) });
  return { clientId, clientSecret: secret, metadata };
}
