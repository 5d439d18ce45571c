/** A real relying party: openid-client against the test server, driving the sign-in pages with a CookieClient. */
import * as oidc from 'openid-client';
import type { RegisteredClient } from '../../src/oidc/clients.ts';
import { CookieClient, type Page } from './browser.ts';

export interface SignInResult {
  tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  claims: oidc.IDToken;
}

export class RelyingParty {
  private constructor(
    readonly config: oidc.Configuration,
    readonly client: RegisteredClient,
    readonly redirectUri: string,
  ) {}

  static async create(issuer: string, client: RegisteredClient): Promise<RelyingParty> {
    const auth = client.clientSecret ? oidc.ClientSecretBasic(client.clientSecret) : oidc.None();
    // The ID token algorithm the client registered is the one it expects (openid-client assumes RS256 otherwise).
    const alg = client.metadata.id_token_signed_response_alg;
    const metadata = { ...(client.clientSecret ? { client_secret: client.clientSecret } : {}), ...(typeof alg === 'string' ? { id_token_signed_response_alg: alg } : {}) };
    const config = await oidc.discovery(new URL(issuer), client.clientId, metadata, auth, {
      execute: [oidc.allowInsecureRequests],
    });
    const redirect = (client.metadata.redirect_uris as string[])[0] ?? '';
    return new RelyingParty(config, client, redirect);
  }

  /** An authorization URL with PKCE (S256), state and nonce; the checks to verify the callback with. */
  async authorization(params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const scope = params.scope ?? 'openid email profile';
    const url = oidc.buildAuthorizationUrl(this.config, {
      redirect_uri: this.redirectUri,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...(scope.includes('offline_access') ? { prompt: 'consent' } : {}),
      ...params,
    });
    return { url: url.toString(), checks: { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true } };
  }

  async callback(url: string, checks: oidc.AuthorizationCodeGrantChecks) {
    return oidc.authorizationCodeGrant(this.config, new URL(url), checks);
  }

  /**
   * The whole front channel: /auth -> sign-in page -> password -> consent -> back at the redirect URI.
   * Pages already satisfied (a session, a grant) are skipped, as a browser would.
   */
  async signIn(browser: CookieClient, user: { email: string; password: string } | undefined, params: Record<string, string> = {}): Promise<SignInResult> {
    const { url, checks } = await this.authorization(params);
    const back = await drive(browser, url, user);
    const tokens = await this.callback(back, checks);
    return { tokens, claims: tokens.claims()! };
  }
}

/** Follows the front channel until the browser is sent to a foreign URL (the redirect URI). */
export async function drive(browser: CookieClient, url: string, user?: { email: string; password: string }): Promise<string> {
  let page: Page & { stoppedAt?: string } = await browser.follow(url);
  for (let step = 0; step < 6; step++) {
    if (page.stoppedAt) return page.stoppedAt;
    if (page.body.includes('/login"') && user) page = await browser.submit(page, '/login', { email: user.email, password: user.password });
    else if (page.body.includes('/confirm"')) page = await browser.submit(page, '/confirm');
    else throw new Error(`stuck at ${page.url} (${page.status}): ${page.body.slice(0, 400)}`);
  }
  throw new Error('sign-in did not finish');
}
