/**
 * Registering clients: input validated into oidc-provider metadata, then checked by oidc-provider's own
 * client schema before it is stored. The secret is generated here, returned once and sealed at rest.
 */
import { randomBytes } from 'node:crypto';
import type Provider from 'oidc-provider';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { LEVELS, type Acr } from '../security/level.ts';
import type { Store } from '../store/index.ts';

export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code'] as const;
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
  })
  .superRefine((c, ctx) => {
    if (c.resourceServer && c.public) ctx.addIssue({ code: 'custom', message: 'a resource server must authenticate: not --public' });
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
    if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.some((g) => g.endsWith('device_code'))) {
      ctx.addIssue({ code: 'custom', message: 'refresh_token needs authorization_code or device_code' });
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
    ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    ...(input.minimumAcr ? { minimum_acr: input.minimumAcr } : {}),
    ...(input.resourceServer ? { resource_server: true } : {}),
    ...(input.pkce ? {} : { pkce_optional: true }),
    ...(input.firstParty ? { first_party: true } : {}),
  };
}

export async function registerClient(store: Store, provider: Provider, raw: ClientInput): Promise<RegisteredClient> {
  const parsed = clientInput.safeParse(raw);
  if (!parsed.success) {
    throw new AppError('client.invalid', 400, parsed.error.issues.map((i) => i.message).join('; '));
  }
  const metadata = toMetadata(parsed.data);
  const clientId = randomBytes(16).toString('base64url');
  const clientSecret = metadata.token_endpoint_auth_method === 'none' ? undefined : randomBytes(32).toString('base64url');
  try {
    await provider.Client.validate({ ...metadata, client_id: clientId, ...(clientSecret ? { client_secret: clientSecret } : {}) } as never);
  } catch (err) {
    const e = err as { error_description?: string; message?: string };
    throw new AppError('client.invalid', 400, e.error_description ?? e.message ?? 'invalid client metadata');
  }
  await store.clients.insert({ clientId, name: parsed.data.name, metadata, ...(clientSecret ? { secret: clientSecret } : {}) });
  return { clientId, clientSecret, metadata };
}
