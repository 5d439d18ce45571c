/**
 * One complete password sign-in as a relying party and a new browser see it: /auth (PKCE S256, state,
 * nonce) -> sign-in page -> password POST -> consent page -> consent POST -> redirect with the code ->
 * code exchanged at /token (client_secret_basic). A new browser has no session and so no grant: every
 * sign-in includes the consent step.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Browser, type Reply } from './browser.ts';
import type { BenchUser, Fixtures } from './seed.ts';

export interface Tokens {
  access_token: string;
  id_token: string;
  refresh_token?: string;
}

const random = (bytes: number) => randomBytes(bytes).toString('base64url');
const field = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
const action = (html: string, step: string) => new RegExp(`action="([^"]*/${step})"`).exec(html)?.[1];

export function basicAuth(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** Signs `user` in to `client`; `offline` asks for a refresh token too (offline_access, prompt=consent). */
export async function signIn(issuer: string, client: Fixtures['web'], user: BenchUser, offline = false): Promise<Tokens> {
  const browser = new Browser(issuer);
  const verifier = random(32);
  const state = random(12);
  const auth = new URL('/auth', issuer);
  auth.search = new URLSearchParams({
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    response_type: 'code',
    scope: offline ? 'openid email offline_access' : 'openid email',
    state,
    nonce: random(12),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    ...(offline ? { prompt: 'consent' } : {}),
  }).toString();

  let reply: Reply = await browser.request(auth.toString());
  for (let step = 0; step < 12; step++) {
    if (reply.location?.startsWith(client.redirectUri)) return exchange(issuer, client, reply.location, state, verifier);
    if (reply.location) {
      reply = await browser.request(reply.location);
      continue;
    }
    const csrf = reply.status === 200 ? field(reply.body, 'csrf') : undefined;
    const login = csrf && action(reply.body, 'login');
    const confirm = csrf && action(reply.body, 'confirm');
    if (login) reply = await browser.request(login, { form: { csrf: csrf!, email: user.email, password: user.password } });
    else if (confirm) reply = await browser.request(confirm, { form: { csrf: csrf! } });
    else throw new Error(`sign-in stuck (HTTP ${reply.status}): ${reply.body.replace(/\s+/g, ' ').slice(0, 300)}`);
  }
  throw new Error('sign-in did not finish in 12 steps');
}

async function exchange(issuer: string, client: Fixtures['web'], callback: string, state: string, verifier: string): Promise<Tokens> {
  const params = new URL(callback).searchParams;
  if (params.get('state') !== state) throw new Error('state mismatch');
  const code = params.get('code');
  if (!code) throw new Error(`no code: ${params.get('error')} ${params.get('error_description')}`);
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(client.clientId, client.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }).toString(),
  });
  const body = (await res.json()) as Partial<Tokens> & { error?: string };
  if (!res.ok || !body.access_token || !body.id_token) throw new Error(`code exchange failed: HTTP ${res.status} ${body.error ?? ''}`);
  return body as Tokens;
}
