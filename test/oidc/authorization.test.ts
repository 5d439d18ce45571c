import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { postAsClient, rejectsWith, responseParams, sleep } from '../helpers/oauth.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';

describe('the authorization endpoint', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let publicRp: RelyingParty;
  const alice = { email: 'alice@example.com', password: 'correct horse battery staple' };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...alice, name: 'Alice Example' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web App', redirectUris: [REDIRECT] }));
    publicRp = await RelyingParty.create(server.url, await server.addClient({ name: 'SPA', public: true, redirectUris: [REDIRECT] }));
  });
  after(() => server.stop());

  /** A raw authorization URL for `rp` with PKCE and the given parameters (some may be dropped by passing ''). */
  async function rawAuthUrl(target: RelyingParty, params: Record<string, string>) {
    const { url } = await target.authorization();
    const u = new URL(url);
    for (const [k, v] of Object.entries(params)) {
      if (v === '') u.searchParams.delete(k);
      else u.searchParams.set(k, v);
    }
    return u.toString();
  }

  describe('ID tokens', () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      it(`signs the ID token with ${alg} when the client registered ${alg}, verifiable with the published key`, async () => {
        const client = await server.addClient({ name: `App ${alg}`, redirectUris: [REDIRECT], idTokenAlg: alg });
        const app = await RelyingParty.create(server.url, client);
        // openid-client then verifies the ID token signature against the JWKS, not only its claims.
        oidc.enableNonRepudiationChecks(app.config);
        const { tokens, claims } = await app.signIn(new CookieClient(server.url), alice);
        const idToken = tokens.id_token!;
        const { header } = decodeJwt(idToken);
        assert.equal(header.alg, alg);
        const keys = await fetchJwks(server.url);
        assert.equal(keys.find((k) => k.kid === header.kid)?.alg, alg, 'signed with the published key of that algorithm');
        assert.equal(verifyJwt(idToken, keys).payload.sub, claims.sub);
        assert.equal(claims.aud, client.clientId);
        assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
        // A token whose signature was tampered with does not verify.
        const [h, p, s] = idToken.split('.') as [string, string, string];
        const flipped = `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
        assert.throws(() => verifyJwt(flipped, keys), /bad signature/);
      });
    }
  });

  describe('redirect URIs', () => {
    it('shows an error page and does not redirect when the redirect_uri is not registered', async () => {
      const url = await rawAuthUrl(rp, { redirect_uri: 'https://attacker.example/cb' });
      const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
      const body = await res.text();
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('location'), null, 'no redirect anywhere');
      assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      assert.match(body, /redirect_uri/);
      assert.doesNotMatch(body, /attacker\.example/, 'the unregistered URI is not echoed as a link');
    });

    for (const [label, uri] of [
      ['a trailing slash', `${REDIRECT}/`],
      ['an extra query', `${REDIRECT}?next=https://attacker.example`],
      ['another port', 'http://localhost:9998/cb'],
      ['another path', 'http://localhost:9999/cb/../cb2'],
      ['a different case in the path', 'http://localhost:9999/CB'],
    ] as const) {
      it(`matches redirect URIs exactly: refuses one with ${label}`, async () => {
        const url = await rawAuthUrl(rp, { redirect_uri: uri });
        const page = await new CookieClient(server.url).follow(url);
        assert.equal(page.status, 400);
        assert.equal(page.stoppedAt, undefined, 'not sent to the altered URI');
        assert.equal(page.headers.get('location'), null);
      });
    }
  });

  describe('response types and PKCE', () => {
    for (const responseType of ['token', 'id_token', 'code id_token', 'code token', 'none']) {
      it(`refuses response_type=${responseType} (no implicit or hybrid flow) and issues no token`, async () => {
        const url = await rawAuthUrl(rp, { response_type: responseType });
        const page = await new CookieClient(server.url).follow(url);
        const params = responseParams(page.stoppedAt);
        assert.equal(params.get('error'), 'unsupported_response_type');
        for (const p of ['code', 'access_token', 'id_token']) assert.equal(params.get(p), null, `no ${p}`);
      });
    }

    it('refuses a public client that sends no PKCE code challenge', async () => {
      const url = await rawAuthUrl(publicRp, { code_challenge: '', code_challenge_method: '' });
      const page = await new CookieClient(server.url).follow(url);
      const params = responseParams(page.stoppedAt);
      assert.equal(params.get('error'), 'invalid_request');
      assert.match(params.get('error_description') ?? '', /PKCE/i);
      assert.equal(params.get('code'), null);
    });

    it('refuses code_challenge_method=plain, for public and confidential clients', async () => {
      for (const target of [publicRp, rp]) {
        const url = await rawAuthUrl(target, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' });
        const page = await new CookieClient(server.url).follow(url);
        const params = responseParams(page.stoppedAt);
        assert.equal(params.get('error'), 'invalid_request');
        assert.equal(params.get('code'), null);
      }
    });

    it('refuses to redeem a PKCE-bound code with the wrong code_verifier, or with none', async () => {
      const browser = new CookieClient(server.url);
      const { url, checks } = await publicRp.authorization();
      const back = await drive(browser, url, alice);
      await rejectsWith(publicRp.callback(back, { ...checks, pkceCodeVerifier: oidc.randomPKCECodeVerifier() }), 'invalid_grant');
      // A confidential client that sent a code challenge may not drop the verifier when it redeems the code.
      const second = await rp.authorization();
      const back2 = await drive(browser, second.url, alice);
      const code = new URL(back2).searchParams.get('code')!;
      const res = await postAsClient(`${server.url}/token`, rp.client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_grant');
    });

    it('refuses a confidential client that sends no PKCE code challenge: no code, at /auth or through PAR', async () => {
      const url = await rawAuthUrl(rp, { code_challenge: '', code_challenge_method: '' });
      const page = await new CookieClient(server.url).follow(url);
      const params = responseParams(page.stoppedAt);
      assert.equal(params.get('error'), 'invalid_request');
      assert.match(params.get('error_description') ?? '', /PKCE/i);
      assert.equal(params.get('code'), null);
      // Pushed (PAR): refused when pushed, so no request_uri exists to use.
      const pushed = await postAsClient(`${server.url}/request`, rp.client, { client_id: rp.client.clientId, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, state: 'par-state' });
      assert.equal(pushed.status, 400);
      const body = (await pushed.json()) as { error: string; error_description: string; request_uri?: string };
      assert.equal(body.error, 'invalid_request');
      assert.match(body.error_description, /PKCE/i);
      assert.equal(body.request_uri, undefined);
    });

    it('signs a confidential client in through PAR with PKCE', async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const nonce = oidc.randomNonce();
      const url = await oidc.buildAuthorizationUrlWithPAR(rp.config, {
        redirect_uri: REDIRECT, scope: 'openid', nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      const back = await drive(new CookieClient(server.url), url.toString(), alice);
      const tokens = await rp.callback(back, { pkceCodeVerifier: verifier, expectedNonce: nonce, idTokenExpected: true });
      assert.equal(tokens.claims()!.aud, rp.client.clientId);
    });

    it('lets a confidential client registered without PKCE (--no-pkce) sign in without it, and never a public one', async () => {
      const old = await RelyingParty.create(server.url, await server.addClient({ name: 'Old app', redirectUris: [REDIRECT], pkce: false }));
      assert.equal(old.client.metadata.pkce_optional, true);
      const url = await rawAuthUrl(old, { code_challenge: '', code_challenge_method: '' });
      const back = await drive(new CookieClient(server.url), url, alice);
      const code = new URL(back).searchParams.get('code');
      assert.ok(code, back);
      const res = await postAsClient(`${server.url}/token`, old.client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
      assert.equal(res.status, 200, await res.clone().text());
      assert.ok(((await res.json()) as { access_token?: string }).access_token);
      await assert.rejects(server.addClient({ name: 'SPA without PKCE', public: true, redirectUris: [REDIRECT], pkce: false }), /a public client must use PKCE/);
    });

    it('accepts an authorization request sent as a form POST (OpenID Connect Core §3.1.2.1)', async () => {
      const { url, checks } = await rp.authorization();
      const browser = new CookieClient(server.url);
      const login = await browser.follow(`${server.url}/auth`, { form: Object.fromEntries(new URL(url).searchParams) });
      assert.equal(login.status, 200, `${login.status} ${login.body.slice(0, 200)}`);
      const page = await browser.submit(login, '/login', alice);
      const back = page.stoppedAt ?? (await browser.submit(page, '/confirm')).stoppedAt;
      assert.ok(back?.startsWith(REDIRECT), `back at the app, got ${page.status} ${page.url}`);
      const tokens = await rp.callback(back!, checks);
      assert.equal(tokens.claims()!.aud, rp.client.clientId);
    });

    it('signs a public client in with PKCE S256', async () => {
      const { tokens, claims } = await publicRp.signIn(new CookieClient(server.url), alice);
      assert.ok(tokens.access_token);
      assert.equal(claims.aud, publicRp.client.clientId);
    });
  });

  describe('prompt and max_age', () => {
    it('answers prompt=none without a session with login_required at the redirect URI', async () => {
      const url = await rawAuthUrl(rp, { prompt: 'none', state: 'st-123' });
      const page = await new CookieClient(server.url).follow(url);
      assert.ok(page.stoppedAt?.startsWith(`${REDIRECT}?`), `back at the redirect URI, got ${page.stoppedAt}`);
      const params = responseParams(page.stoppedAt);
      assert.equal(params.get('error'), 'login_required');
      assert.equal(params.get('state'), 'st-123');
      assert.equal(params.get('iss'), server.url);
      assert.equal(params.get('code'), null);
    });

    it('reuses the session without a new sign-in, but max_age=0 and prompt=login force one and give a later auth_time', async () => {
      const browser = new CookieClient(server.url);
      const first = await rp.signIn(browser, alice);
      const authTime1 = first.claims.auth_time!;

      // With the session and no max_age, the browser goes straight back with a code and the same auth_time.
      const again = await rp.authorization();
      const quiet = await browser.follow(again.url);
      assert.ok(quiet.stoppedAt, 'no sign-in page with a live session');
      const reused = await rp.callback(quiet.stoppedAt, again.checks);
      assert.equal(reused.claims()!.auth_time, authTime1);

      await sleep(1100);
      const forced = await rp.authorization({ max_age: '0' });
      const loginPage = await browser.follow(forced.url);
      assert.equal(loginPage.stoppedAt, undefined);
      assert.match(loginPage.body, /\/login"/, 'max_age=0 shows the sign-in page again');
      const back = await browser.submit(loginPage, '/login', alice);
      const afterMaxAge = (await rp.callback(back.stoppedAt!, forced.checks)).claims()!;
      assert.ok(afterMaxAge.auth_time! > authTime1, `auth_time ${afterMaxAge.auth_time} > ${authTime1}`);

      await sleep(1100);
      const relogin = await rp.authorization({ prompt: 'login' });
      const loginPage2 = await browser.follow(relogin.url);
      assert.match(loginPage2.body, /\/login"/, 'prompt=login shows the sign-in page again');
      const back2 = await browser.submit(loginPage2, '/login', alice);
      const afterPromptLogin = (await rp.callback(back2.stoppedAt!, relogin.checks)).claims()!;
      assert.ok(afterPromptLogin.auth_time! > afterMaxAge.auth_time!);
      assert.equal(afterPromptLogin.sub, first.claims.sub);
    });

    it('forces a new sign-in when a small max_age has passed since the last one', async () => {
      const browser = new CookieClient(server.url);
      const first = await rp.signIn(browser, alice);
      await sleep(2100);
      const req = await rp.authorization({ max_age: '1' });
      const page = await browser.follow(req.url);
      assert.match(page.body, /\/login"/, 'max_age=1 after 2 s asks for the password again');
      const back = await browser.submit(page, '/login', alice);
      const claims = (await rp.callback(back.stoppedAt!, req.checks)).claims()!;
      assert.ok(claims.auth_time! > first.claims.auth_time!);
    });
  });

  it('ignores unknown authorization parameters and still signs the user in', async () => {
    const { tokens, claims } = await rp.signIn(new CookieClient(server.url), alice, { foo: 'bar', x_unknown_extension: '1', display_mode: 'weird' });
    assert.ok(tokens.access_token);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
  });

  it('puts a claim requested through the claims parameter into the ID token', async () => {
    const browser = new CookieClient(server.url);
    // Without the claims parameter, scope=openid alone gives no email in the ID token.
    const plain = await rp.signIn(browser, alice, { scope: 'openid' });
    assert.equal(plain.claims.email, undefined);
    const { claims } = await rp.signIn(new CookieClient(server.url), alice, { scope: 'openid', claims: JSON.stringify({ id_token: { email: null } }) });
    assert.equal(claims.email, alice.email);
    assert.equal(claims.name, undefined, 'only the requested claim is added');
  });

  describe('consent', () => {
    it('lists the requested scopes on the consent page', async () => {
      // A user who never allowed this app anything (consent is remembered: alice's would list only what is new).
      const newcomer = await server.newUser('consent');
      const browser = new CookieClient(server.url);
      const { url } = await rp.authorization({ scope: 'openid email profile offline_access' });
      const loginPage = await browser.follow(url);
      const consent = await browser.submit(loginPage, '/login', newcomer);
      assert.match(consent.body, /\/confirm"/);
      assert.match(consent.body, /Allow Web App\?/);
      for (const text of ['See your email address', 'See your name and profile', 'Stay connected when you are not using it']) {
        assert.ok(consent.body.includes(text), `lists "${text}"`);
      }
      assert.ok(!consent.body.includes('See your phone number'), 'does not list a scope that was not requested');
    });

    it('gives access_denied at the redirect URI when the user denies, and grants nothing', async () => {
      const browser = new CookieClient(server.url);
      const { url } = await rp.authorization({ scope: 'openid email phone', state: 'deny-state' });
      const loginPage = await browser.follow(url);
      const consent = await browser.submit(loginPage, '/login', alice);
      assert.ok(consent.body.includes('See your phone number'));
      const denied = await browser.submit(consent, '/abort');
      const params = responseParams(denied.stoppedAt);
      assert.equal(params.get('error'), 'access_denied');
      assert.equal(params.get('state'), 'deny-state');
      assert.equal(params.get('code'), null);
      // Nothing was granted: a silent request for the same scopes needs consent.
      const silent = await browser.follow(await rawAuthUrl(rp, { scope: 'openid email phone', prompt: 'none' }));
      assert.equal(responseParams(silent.stoppedAt).get('error'), 'consent_required');
    });
  });
});
