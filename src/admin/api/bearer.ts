/**
 * The admin API's authentication: `Authorization: Bearer <JWT>`, an access token the provider issued by
 * the client-credentials grant for the resource `<issuer>/admin/api` (oidc/admin-api.ts), verified here
 * with jose against the provider's published public keys (active ones, and retired ones still published
 * for the tokens they signed): the signature, `typ` at+jwt, the one algorithm the provider signs these
 * tokens with, `iss`, `aud` (exactly the API), `exp`, `nbf` and `iat` (a few seconds of clock skew), and a
 * `client_id`. The client must still exist and be enabled, and its scopes are those of the token that
 * the client is registered for (its `scope` metadata: `clients add --scope`), so taking a scope away or
 * disabling the client takes effect at once, whatever tokens it still holds.
 */
import { createLocalJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { ADMIN_API_SCOPES, adminApiAlg, adminApiResource, type AdminApiScope } from '../../oidc/admin-api.ts';
import type { Services } from '../../services.ts';
import { ApiProblem } from './problem.ts';

/** How far the clocks of the provider and this server may disagree. */
export const CLOCK_TOLERANCE_SECONDS = 5;

export interface VerifiedClient {
  clientId: string;
  scopes: AdminApiScope[];
}

/**
 * A token refused (401). `reason` is for the caller (and the audit row); `client` the token's `client_id`
 * for the audit row alone: `verified` when the token's signature and claims held (its client is gone or
 * disabled), else read without verifying anything (and marked so there).
 */
export class TokenRefused extends ApiProblem {
  constructor(readonly reason: string, readonly client?: { id: string; verified: boolean }) {
    super('token.invalid', 401, `The access token was refused: ${reason}.`, undefined, { 'WWW-Authenticate': challenge('invalid_token', reason) });
  }
}

/** No token at all: the challenge names no error (RFC 6750 §3.1). */
export class TokenMissing extends ApiProblem {
  constructor() {
    super('token.missing', 401, 'Send an access token for this API: Authorization: Bearer <token>.', undefined, { 'WWW-Authenticate': 'Bearer realm="admin-api"' });
  }
}

export function challenge(error: 'invalid_token' | 'insufficient_scope', description: string, scope?: string): string {
  return `Bearer realm="admin-api", error="${error}", error_description="${description.replace(/["\\]/g, '')}"${scope ? `, scope="${scope}"` : ''}`;
}

const isScope = (s: string): s is AdminApiScope => (ADMIN_API_SCOPES as readonly string[]).includes(s);

function bearerToken(header: string | undefined): string {
  if (!header) throw new TokenMissing();
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
  if (!m || header.length > 8192) throw new TokenRefused('not a bearer token');
  return m[1]!;
}

/** The token's `client_id`, unverified: only ever recorded as such. Short and plain, or nothing. */
function claimedClientOf(token: string): { id: string; verified: false } | undefined {
  try {
    const id = decodeJwt(token).client_id;
    return typeof id === 'string' && /^[\x21-\x7e]{1,100}$/.test(id) ? { id, verified: false } : undefined;
  } catch {
    return undefined;
  }
}

/** The provider's published public keys (what its JWKS serves), read from the store each time. */
async function publishedKeys(services: Services): Promise<JWK[]> {
  const now = Date.now();
  return (await services.store.signingKeys.list())
    .filter((k) => k.state === 'active' || (k.expiresAt !== null && k.expiresAt.getTime() > now))
    .map((k) => k.publicJwk as JWK);
}

function reasonOf(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'it has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `its ${err.claim} claim is not valid here`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'its signature does not verify';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'it was not signed by a key of this server';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'its algorithm is not accepted';
  return 'it is not a valid access token';
}

const audienceIsExactly = (payload: JWTPayload, resource: string) =>
  payload.aud === resource || (Array.isArray(payload.aud) && payload.aud.length === 1 && payload.aud[0] === resource);

export async function verifyAccessToken(services: Services, authorization: string | undefined): Promise<VerifiedClient> {
  const { config } = services;
  const token = bearerToken(authorization);
  const claimed = claimedClientOf(token);
  const resource = adminApiResource(config);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, createLocalJWKSet({ keys: await publishedKeys(services) }), {
      issuer: config.issuer,
      audience: resource,
      algorithms: [adminApiAlg(config)],
      typ: 'at+jwt',
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      maxTokenAge: config.adminApi.tokenSeconds,
      requiredClaims: ['exp', 'iat', 'client_id'],
    }));
  } catch (err) {
    throw new TokenRefused(reasonOf(err), claimed);
  }
  if (!audienceIsExactly(payload, resource)) throw new TokenRefused('its aud claim is not valid here', claimed);
  const clientId = payload.client_id;
  if (typeof clientId !== 'string') throw new TokenRefused('its client_id claim is not valid here', claimed);
  const client = await services.store.clients.find(clientId);
  if (!client) throw new TokenRefused('its client no longer exists', { id: clientId, verified: true });
  if (client.disabledAt) throw new TokenRefused('its client is disabled', { id: clientId, verified: true });
  const registered = new Set(typeof client.metadata.scope === 'string' ? client.metadata.scope.split(' ') : []);
  const granted = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  return { clientId, scopes: [...new Set(granted)].filter((s) => isScope(s) && registered.has(s)) as AdminApiScope[] };
}
