/** Small assertions shared by the protocol suites: OAuth error codes, redirect parameters, bearer calls. */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The OAuth `error` code carried by an openid-client error, whatever its kind. */
export function oauthError(err: unknown): string | undefined {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) return err.error;
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    const [challenge] = err.cause;
    return challenge?.parameters.error;
  }
  return undefined;
}

/** Awaits `promise` and asserts it failed with the OAuth error `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: string, message?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.equal(oauthError(err), code, `${message ?? 'expected an OAuth error'}: ${String(err)}`);
    return true;
  });
}

/** The parameters of an authorization response (query or fragment) at the redirect URI. */
export function responseParams(url: string | undefined): URLSearchParams {
  assert.ok(url, 'the browser was sent back to the redirect URI');
  const u = new URL(url);
  const params = new URLSearchParams(u.search);
  for (const [k, v] of new URLSearchParams(u.hash.slice(1))) params.append(k, v);
  return params;
}

/** GET the userinfo endpoint with a token; returns the status (and the body when it is JSON). */
export async function userinfo(issuer: string, token: string, scheme = 'Bearer', headers: Record<string, string> = {}) {
  const res = await fetch(`${issuer}/me`, { headers: { authorization: `${scheme} ${token}`, ...headers } });
  const text = await res.text();
  let body: Record<string, unknown> | undefined;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, wwwAuthenticate: res.headers.get('www-authenticate') };
}

/** The median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A form POST to a back-channel endpoint (`/token`, `/request`, …) as a confidential client, with client_secret_basic. */
export function postAsClient(url: string, client: { clientId: string; clientSecret?: string | undefined }, params: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret ?? ''}`).toString('base64')}`,
    },
    body: new URLSearchParams(params),
  });
}
