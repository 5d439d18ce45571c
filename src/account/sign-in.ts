/**
 * The account page signs in the way any app does: an authorization request to the provider with PKCE (S256),
 * state and nonce, kept in a short-lived signed cookie together with the local page to come back to. A
 * recent sign-in at a level is asked for with `max_age` and `acr_values`, so every sign-in rule applies.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { ACCOUNT_CLIENT_ID, ACCOUNT_SCOPE, accountCallbackUri } from '../oidc/account-client.ts';
import type { AccountDeps } from './context.ts';
import { accountCookies, FLOW_COOKIE } from './cookies.ts';

/** How long a sign-in started from the account page may take. */
export const FLOW_TTL_SECONDS = 1800;

export interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  /** Epoch seconds. */
  expiresAt: number;
}

/** Only the account page's own pages: "/account" or "/account/a-b/c", nothing else (no query, no host). */
const LOCAL = /^\/account(\/[a-z0-9-]+){0,3}$/;

export function safeReturnPath(value: unknown): string {
  return typeof value === 'string' && LOCAL.test(value) ? value : '/account';
}

const random = () => randomBytes(32).toString('base64url');

export interface SignInRequest {
  returnTo: string;
  /** Ask for a sign-in at most this many seconds old (recent authentication). */
  maxAge?: number;
  /** Ask for at least this level. */
  acrValues?: string;
}

/** Sends the browser to the provider's authorization endpoint. */
export function startSignIn(deps: Pick<AccountDeps, 'config'>, ctx: Context, request: SignInRequest): void {
  const { config } = deps;
  const flow: Flow = {
    state: random(), nonce: random(), verifier: random(), returnTo: safeReturnPath(request.returnTo),
    expiresAt: Math.floor(Date.now() / 1000) + FLOW_TTL_SECONDS,
  };
  accountCookies(config).set(ctx, FLOW_COOKIE, Buffer.from(JSON.stringify(flow)).toString('base64url'), FLOW_TTL_SECONDS);
  const url = new URL(`${config.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: ACCOUNT_CLIENT_ID,
    response_type: 'code',
    scope: ACCOUNT_SCOPE,
    redirect_uri: accountCallbackUri(config),
    code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: flow.state,
    nonce: flow.nonce,
    ...(request.maxAge !== undefined ? { max_age: String(request.maxAge) } : {}),
    ...(request.acrValues ? { acr_values: request.acrValues } : {}),
  }).toString();
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 303;
  ctx.redirect(url.toString());
}

/** The sign-in in progress in this browser, taken out of its cookie (a flow is used once), or undefined. */
export function takeFlow(deps: Pick<AccountDeps, 'config'>, ctx: Context): Flow | undefined {
  const cookies = accountCookies(deps.config);
  const raw = cookies.get(ctx, FLOW_COOKIE);
  cookies.clear(ctx, FLOW_COOKIE);
  if (!raw) return undefined;
  try {
    const f = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Flow>;
    const ok = typeof f.state === 'string' && typeof f.nonce === 'string' && typeof f.verifier === 'string'
      && typeof f.returnTo === 'string' && typeof f.expiresAt === 'number' && f.expiresAt > Date.now() / 1000;
    return ok ? { ...(f as Flow), returnTo: safeReturnPath(f.returnTo) } : undefined;
  } catch {
    return undefined;
  }
}
