/**
 * A first-party app signs in the way any app does: an authorization request to the provider with PKCE
 * (S256), state and nonce, kept in a short-lived signed cookie together with the local page to come back
 * to. A recent sign-in at a level is asked for with `max_age` and `acr_values`, so every sign-in rule applies.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import { STEP_UP_ACTION_PARAM } from '../oidc/admin-api.ts';
import { callbackUri, type FirstPartyApp } from './app.ts';
import { appCookies, flowCookie } from './cookies.ts';

/** How long a sign-in started from a first-party app may take. */
export const FLOW_TTL_SECONDS = 1800;

export interface Flow {
  state: string;
  nonce: string;
  verifier: string;
  returnTo: string;
  /** The level the request asked for (acr_values), if any: a callback compares what came back with it. */
  acrValues?: string | undefined;
  /** The age the request asked for (max_age), if any: a callback refuses an older sign-in (a request edited on the way). */
  maxAge?: number | undefined;
  /** The account the sign-in must be of (a step-up of a signed-in user), if any. */
  account?: string | undefined;
  /** Epoch seconds. */
  expiresAt: number;
}

/**
 * Only the app's own pages: "/account" or "/account/a-b/c" (at most three segments of letters, digits, `-`
 * and `_`, such as an id), nothing else (no query, no host, no dots).
 */
export function safeReturnPath(app: FirstPartyApp, value: unknown): string {
  const local = typeof value === 'string' && value.startsWith(app.path) && /^(\/[A-Za-z0-9_-]{1,100}){0,3}$/.test(value.slice(app.path.length));
  return local ? (value as string) : app.path;
}

const random = () => randomBytes(32).toString('base64url');

export interface SignInRequest {
  returnTo: string;
  /** Ask for a sign-in at most this many seconds old (recent authentication). */
  maxAge?: number;
  /** Ask for at least this level. */
  acrValues?: string;
  /** The console's sensitive action the sign-in confirms, named on the sign-in pages (STEP_UP_ACTION_PARAM). */
  action?: string;
  /** The signed-in user who must confirm it's them: their id (the callback checks it) and email (login_hint). */
  account?: { id: string; email: string };
}

/** Sends the browser to the provider's authorization endpoint. */
export function startSignIn(config: Config, app: FirstPartyApp, ctx: Context, request: SignInRequest): void {
  const flow: Flow = {
    state: random(), nonce: random(), verifier: random(), returnTo: safeReturnPath(app, request.returnTo),
    acrValues: request.acrValues, maxAge: request.maxAge, account: request.account?.id,
    expiresAt: Math.floor(Date.now() / 1000) + FLOW_TTL_SECONDS,
  };
  appCookies(config, app).set(ctx, flowCookie(app), Buffer.from(JSON.stringify(flow)).toString('base64url'), FLOW_TTL_SECONDS);
  const url = new URL(`${config.issuer}/auth`);
  url.search = new URLSearchParams({
    client_id: app.clientId,
    response_type: 'code',
    scope: app.scope,
    redirect_uri: callbackUri(config, app),
    code_challenge: createHash('sha256').update(flow.verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: flow.state,
    nonce: flow.nonce,
    ...(request.maxAge !== undefined ? { max_age: String(request.maxAge) } : {}),
    ...(request.acrValues ? { acr_values: request.acrValues } : {}),
    ...(request.action ? { [STEP_UP_ACTION_PARAM]: request.action } : {}),
    ...(request.account ? { login_hint: request.account.email } : {}),
  }).toString();
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 303;
  ctx.redirect(url.toString());
}

/** The sign-in in progress in this browser, taken out of its cookie (a flow is used once), or undefined. */
export function takeFlow(config: Config, app: FirstPartyApp, ctx: Context): Flow | undefined {
  const cookies = appCookies(config, app);
  const raw = cookies.get(ctx, flowCookie(app));
  cookies.clear(ctx, flowCookie(app));
  if (!raw) return undefined;
  try {
    const f = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Partial<Flow>;
    const ok = typeof f.state === 'string' && typeof f.nonce === 'string' && typeof f.verifier === 'string'
      && typeof f.returnTo === 'string' && typeof f.expiresAt === 'number' && f.expiresAt > Date.now() / 1000
      && (f.acrValues === undefined || typeof f.acrValues === 'string')
      && (f.maxAge === undefined || typeof f.maxAge === 'number') && (f.account === undefined || typeof f.account === 'string');
    return ok ? { ...(f as Flow), returnTo: safeReturnPath(app, f.returnTo) } : undefined;
  } catch {
    return undefined;
  }
}
