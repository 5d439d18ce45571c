/**
 * What oidc-provider tells through its events: tokens issued at the token endpoint by grant type, token
 * requests refused, and sign-ins started (an authorization request that needs the login prompt). Listening
 * to events keeps the endpoints untouched.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { Counter } from 'prom-client';
import { requestedLevel } from '../oidc/policy.ts';
import { bounded, metrics, registry } from './registry.ts';

const tokensIssued = new Counter({
  name: 'latchkey_tokens_issued_total',
  help: 'Tokens issued at the token endpoint, by grant type and token (access_token, refresh_token, id_token)',
  labelNames: ['grant_type', 'token'] as const,
  registers: [registry],
});

const tokenErrors = new Counter({
  name: 'latchkey_token_errors_total',
  help: 'Token requests refused, by grant type and OAuth error code',
  labelNames: ['grant_type', 'error'] as const,
  registers: [registry],
});

const GRANT_TYPES = new Set([
  'authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code',
  'urn:openid:params:grant-type:ciba', 'urn:ietf:params:oauth:grant-type:token-exchange',
]);
const TOKENS = ['access_token', 'refresh_token', 'id_token'] as const;
/** OAuth error codes are fixed strings in oidc-provider's error classes; anything else is `other`. */
const errorCode = (err: unknown) => {
  const code = (err as { error?: unknown } | null)?.error;
  return typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'other';
};
const grantType = (ctx: KoaContextWithOIDC) => bounded((ctx.oidc?.params as { grant_type?: unknown } | undefined)?.grant_type, GRANT_TYPES);

const observed = new WeakSet<Provider>();

/** A listener runs inside oidc-provider's request: counting must never fail it. */
const safely = <A extends unknown[]>(count: (...args: A) => void) => (...args: A) => {
  try {
    count(...args);
  } catch {
    // A number not counted is better than a request failed.
  }
};

/** Listens to one provider's events (each key rotation makes a new provider: oidc/current.ts). Idempotent. */
export function observeProvider(provider: Provider): void {
  if (observed.has(provider)) return;
  observed.add(provider);
  provider.on('grant.success', safely((ctx: KoaContextWithOIDC) => {
    const body = ctx.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object') return;
    const grant_type = grantType(ctx);
    for (const token of TOKENS) if (typeof body[token] === 'string') tokensIssued.inc({ grant_type, token });
  }));
  provider.on('grant.error', safely((ctx: KoaContextWithOIDC, err: unknown) => {
    tokenErrors.inc({ grant_type: grantType(ctx), error: errorCode(err) });
  }));
  provider.on('interaction.started', safely((ctx: KoaContextWithOIDC, prompt: { name?: string }) => {
    if (prompt?.name === 'login') metrics.signInStarted(requestedLevel(ctx));
  }));
}
