import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const LOGGED_OUT = 'http://localhost:9999/logged-out';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Delivery {
  method: string;
  path: string;
  contentType: string;
  body: URLSearchParams;
}

/** A relying party's back-channel logout endpoint: a real HTTP server on a loopback port. */
async function startReceiver() {
  const deliveries: Delivery[] = [];
  const waiting: ((d: Delivery) => void)[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const d = {
        method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'] ?? '',
        body: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      };
      deliveries.push(d);
      waiting.shift()?.(d);
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    deliveries,
    /** The next delivery, or a failure after `ms`. */
    next(ms = 5000): Promise<Delivery> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no back-channel logout request arrived')), ms);
        waiting.push((d) => {
          clearTimeout(timer);
          resolve(d);
        });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('RP-initiated logout', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let backchannelRp: RelyingParty;
  const alice = { email: 'alice@example.com', password: 'alice signs out carefully' };

  before(async () => {
    // Apps on loopback or a private network get logout tokens only when the operator opts in (SSRF protection).
    server = await startTestServer({ config: { backchannelLogout: { allowPrivateNetwork: true } } });
    receiver = await startReceiver();
    await server.addUser(alice);
    rp = await RelyingParty.create(server.url, await server.addClient({
      name: 'Notes', redirectUris: ['http://localhost:9999/cb'], postLogoutRedirectUris: [LOGGED_OUT],
    }));
    backchannelRp = await RelyingParty.create(server.url, await server.addClient({
      name: 'Ledger', redirectUris: ['http://localhost:9998/cb'], postLogoutRedirectUris: ['http://localhost:9998/bye'],
      backchannelLogoutUri: receiver.url,
    }));
  });
  after(async () => {
    await receiver.close();
    await server.stop();
  });

  /** A silent authorization request (prompt=none) from `browser`: the code's callback URL or the error. */
  async function silent(browser: CookieClient, relyingParty = rp) {
    const { url } = await relyingParty.authorization({ prompt: 'none' });
    const page = await browser.follow(url);
    assert.ok(page.stoppedAt, `prompt=none must answer at the redirect URI, got ${page.status} at ${page.url}`);
    return new URL(page.stoppedAt);
  }

  async function signedIn(relyingParty = rp) {
    const browser = new CookieClient(server.url);
    const { tokens, claims } = await relyingParty.signIn(browser, alice);
    assert.ok(tokens.id_token);
    assert.ok((await silent(browser, relyingParty)).searchParams.get('code'), 'the session is live before logout');
    return { browser, idToken: tokens.id_token, claims };
  }

  function copyOf(browser: CookieClient): CookieClient {
    const copy = new CookieClient(browser.origin);
    for (const [k, v] of browser.jar) copy.jar.set(k, v);
    return copy;
  }

  it('signs out at once with a valid id_token_hint of the user signed in: no question, straight back to the app with the state', async () => {
    const { browser, idToken } = await signedIn();
    const state = oidc.randomState();
    const url = oidc.buildEndSessionUrl(rp.config, { id_token_hint: idToken, post_logout_redirect_uri: LOGGED_OUT, state });
    const done = await browser.follow(url.toString());
    assert.equal(done.status, 303);
    assert.ok(done.stoppedAt, 'no page on the way');
    const back = new URL(done.stoppedAt);
    assert.equal(`${back.origin}${back.pathname}`, LOGGED_OUT);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal((await silent(browser)).searchParams.get('error'), 'login_required', 'the session ended');
  });

  it('asks when the id_token_hint names someone else than the user signed in here (a link cannot sign anyone out)', async () => {
    const { idToken } = await signedIn();
    const bob = await server.newUser('bob');
    const browser = new CookieClient(server.url);
    await rp.signIn(browser, bob);
    const page = await browser.follow(oidc.buildEndSessionUrl(rp.config, { id_token_hint: idToken, post_logout_redirect_uri: LOGGED_OUT }).toString());
    assert.equal(page.status, 200);
    assert.equal(page.stoppedAt, undefined);
    assert.match(page.body, /op\.logoutForm/, 'the question is asked');
    assert.ok((await silent(browser)).searchParams.get('code'), 'bob is still signed in');
  });

  it('without an id_token_hint shows our confirmation page, then sends the browser to the registered post_logout_redirect_uri with the state', async () => {
    const { browser } = await signedIn();
    const state = oidc.randomState();
    const url = oidc.buildEndSessionUrl(rp.config, { client_id: rp.client.clientId, post_logout_redirect_uri: LOGGED_OUT, state });
    const page = await browser.follow(url.toString());
    assert.equal(page.status, 200);
    assert.equal(page.stoppedAt, undefined, 'no redirect before the user confirms');
    assert.match(page.body, /<h1>Sign out of Notes\?<\/h1>/, 'our own page (views/provider/logout.njk) names the app');
    assert.match(page.body, /Yes, sign me out/);
    assert.match(page.body, /<form id="op.logoutForm" method="post" action="[^"]*\/session\/end\/confirm">/);
    assert.equal(page.headers.get('cache-control'), 'no-store');

    const done = await browser.submit(page, '/session/end/confirm', { logout: 'yes' });
    assert.equal(done.status, 303);
    assert.ok(done.stoppedAt);
    const back = new URL(done.stoppedAt);
    assert.equal(`${back.origin}${back.pathname}`, LOGGED_OUT);
    assert.equal(back.searchParams.get('state'), state);
  });

  it('accepts the logout request as a form POST too (RP-Initiated Logout §2), and signs out', async () => {
    const { browser, idToken } = await signedIn();
    const state = oidc.randomState();
    const done = await browser.follow(`${server.url}/session/end`, { form: { id_token_hint: idToken, post_logout_redirect_uri: LOGGED_OUT, state } });
    assert.ok(done.stoppedAt, done.body.slice(0, 200));
    assert.equal(new URL(done.stoppedAt).searchParams.get('state'), state);
    assert.equal((await silent(browser)).searchParams.get('error'), 'login_required');
  });

  it('really ends the session: prompt=none then gives login_required, even with the old cookies', async () => {
    const { browser, idToken } = await signedIn();
    const oldCookies = copyOf(browser);
    const url = oidc.buildEndSessionUrl(rp.config, { id_token_hint: idToken, post_logout_redirect_uri: LOGGED_OUT });
    const done = await browser.follow(url.toString());
    assert.ok(done.stoppedAt?.startsWith(LOGGED_OUT));
    assert.equal(new URL(done.stoppedAt!).searchParams.get('state'), null, 'no state when none was sent');

    for (const b of [browser, oldCookies]) {
      const answer = await silent(b);
      assert.equal(answer.searchParams.get('error'), 'login_required');
      assert.equal(answer.searchParams.get('code'), null);
    }
  });

  it('refuses an unregistered or altered post_logout_redirect_uri with an error page, never redirecting to it', async () => {
    const { browser, idToken } = await signedIn();
    const refused = [
      'https://evil.example/logged-out',
      'http://localhost:9999/elsewhere',
      `${LOGGED_OUT}/`,
      `${LOGGED_OUT}/x`,
      `${LOGGED_OUT}?next=https://evil.example`,
      `${LOGGED_OUT}#frag`,
      'http://localhost:9998/logged-out',
      'https://localhost:9999/logged-out',
      'http://127.0.0.1:9999/logged-out',
      'http://localhost:9998/bye', // registered, but for another client
    ];
    for (const target of refused) {
      for (const params of [{ id_token_hint: idToken }, { client_id: rp.client.clientId }] as Record<string, string>[]) {
        const url = oidc.buildEndSessionUrl(rp.config, { ...params, post_logout_redirect_uri: target, state: 's' });
        const page = await browser.request(url.toString());
        assert.equal(page.status, 400, `${target} must be refused`);
        assert.equal(page.headers.get('location'), null, `no redirect for ${target}`);
        assert.match(page.body, /post_logout_redirect_uri not registered/);
        assert.doesNotMatch(page.body, /op\.logoutForm/, 'no logout form on the error page');
      }
    }
    assert.ok((await silent(browser)).searchParams.get('code'), 'a refused logout request leaves the session alone');
  });

  it('ignores a post_logout_redirect_uri when the request names no client, and ends on our own page', async () => {
    const { browser } = await signedIn();
    const url = new URL(`${server.url}/session/end`);
    url.searchParams.set('post_logout_redirect_uri', 'https://evil.example/logged-out');
    url.searchParams.set('state', 's');
    const page = await browser.follow(url.toString());
    assert.equal(page.status, 200);
    assert.match(page.body, /op\.logoutForm/);
    const done = await browser.submit(page, '/session/end/confirm', { logout: 'yes' });
    assert.equal(done.stoppedAt, undefined, 'never sent to the unregistered address');
    assert.equal(done.status, 200);
    assert.ok(done.url.startsWith(`${server.url}/session/end/success`));
    assert.match(done.body, /You are signed out/);
    assert.equal((await silent(browser)).searchParams.get('error'), 'login_required');
  });

  it('refuses a confirmation without the logout form\'s xsrf token, and the session survives', async () => {
    const { browser } = await signedIn();
    const url = oidc.buildEndSessionUrl(rp.config, { client_id: rp.client.clientId, post_logout_redirect_uri: LOGGED_OUT });
    const page = await browser.follow(url.toString());
    assert.equal(page.status, 200);
    const forged = await browser.request(`${server.url}/session/end/confirm`, { form: { xsrf: 'forged', logout: 'yes' } });
    assert.equal(forged.status, 400);
    assert.equal(forged.headers.get('location'), null);
    assert.ok((await silent(browser)).searchParams.get('code'), 'still signed in');
  });

  it('delivers a signed back-channel logout token to the client\'s backchannel_logout_uri', async () => {
    const { browser, idToken, claims } = await signedIn(backchannelRp);
    assert.equal(typeof claims.sid, 'string', 'the ID token carries the session id the logout token will name');
    const before = receiver.deliveries.length;
    const url = oidc.buildEndSessionUrl(backchannelRp.config, { id_token_hint: idToken, post_logout_redirect_uri: 'http://localhost:9998/bye' });
    const arriving = receiver.next();
    const done = await browser.follow(url.toString());
    assert.ok(done.stoppedAt?.startsWith('http://localhost:9998/bye'));
    const delivery = await arriving;
    assert.equal(receiver.deliveries.length, before + 1, 'exactly one delivery');
    assert.equal(delivery.method, 'POST');
    assert.equal(delivery.path, '/backchannel-logout');
    assert.match(delivery.contentType, /^application\/x-www-form-urlencoded/);
    const token = delivery.body.get('logout_token');
    assert.ok(token, 'the body carries a logout_token');

    const { header, payload } = verifyJwt(token, await fetchJwks(server.url));
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'logout+jwt');
    assert.equal(header.kid, decodeJwt(idToken).header.kid, 'signed with the key that signs this client\'s ID tokens');
    assert.equal(payload.iss, server.url);
    assert.equal(payload.aud, backchannelRp.client.clientId);
    assert.equal(payload.sub, claims.sub);
    assert.equal(payload.sid, claims.sid);
    assert.deepEqual(payload.events, { [BACKCHANNEL_EVENT]: {} });
    assert.equal('nonce' in payload, false, 'a logout token never carries a nonce');
    assert.equal(typeof payload.jti, 'string');
    assert.equal(typeof payload.iat, 'number');
    assert.ok(Math.abs((payload.iat as number) - Date.now() / 1000) < 60);

    assert.equal((await silent(browser, backchannelRp)).searchParams.get('error'), 'login_required');
  });

  it('rejects a logout token whose signature was tampered with (the check above is real)', async () => {
    const { browser, idToken } = await signedIn(backchannelRp);
    const arriving = receiver.next();
    await browser.follow(oidc.buildEndSessionUrl(backchannelRp.config, { id_token_hint: idToken }).toString());
    const token = (await arriving).body.get('logout_token')!;
    const [h, p, s] = token.split('.') as [string, string, string];
    const other = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    other.sub = 'someone-else';
    const forged = `${h}.${Buffer.from(JSON.stringify(other)).toString('base64url')}.${s}`;
    assert.throws(() => verifyJwt(forged, []), /no key/);
    const keys = await fetchJwks(server.url);
    assert.throws(() => verifyJwt(forged, keys), /bad signature/);
    assert.doesNotThrow(() => verifyJwt(token, keys));
  });

  it('sends no back-channel logout to a client the user never signed in to', async () => {
    const { browser, idToken } = await signedIn();
    const before = receiver.deliveries.length;
    await browser.follow(oidc.buildEndSessionUrl(rp.config, { id_token_hint: idToken }).toString());
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(receiver.deliveries.length, before);
  });

  it('signs the user out of every app of the session, and sends the back-channel token on logout from another app', async () => {
    const browser = new CookieClient(server.url);
    const first = await backchannelRp.signIn(browser, alice);
    const { url, checks } = await rp.authorization();
    const second = await rp.callback(await drive(browser, url, alice), checks);
    const arriving = receiver.next();
    await browser.follow(oidc.buildEndSessionUrl(rp.config, { id_token_hint: second.id_token!, post_logout_redirect_uri: LOGGED_OUT }).toString());
    const { payload } = verifyJwt((await arriving).body.get('logout_token')!, await fetchJwks(server.url));
    assert.equal(payload.aud, backchannelRp.client.clientId);
    assert.equal(payload.sid, first.claims.sid);
    assert.equal((await silent(browser, backchannelRp)).searchParams.get('error'), 'login_required');
  });
});

describe('back-channel logout with the default configuration', () => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const bob = { email: 'bob@example.com', password: 'bob stays on the public internet' };

  before(async () => {
    server = await startTestServer();
    receiver = await startReceiver();
    await server.addUser(bob);
  });
  after(async () => {
    await receiver.close();
    await server.stop();
  });

  it('ships with private-network delivery off', () => {
    assert.equal(server.config.backchannelLogout.allowPrivateNetwork, false);
  });

  it('refuses to connect to a loopback back-channel URI (SSRF protection), logs it, and still ends the session', async () => {
    const rp = await RelyingParty.create(server.url, await server.addClient({
      name: 'Internal', redirectUris: ['http://localhost:9997/cb'], backchannelLogoutUri: receiver.url,
    }));
    const browser = new CookieClient(server.url);
    const { tokens, claims } = await rp.signIn(browser, bob);
    const done = await browser.follow(oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token! }).toString());
    assert.match(done.body, /You are signed out/);
    assert.equal(receiver.deliveries.length, 0, 'nothing reached the loopback receiver');
    const warning = server.logText().split('\n').find((l) => l.includes('back-channel logout failed'));
    assert.ok(warning, 'the failed delivery is logged');
    const entry = JSON.parse(warning) as { client?: string; sid?: string };
    assert.equal(entry.client, rp.client.clientId);
    assert.equal(entry.sid, claims.sid);
    const { url } = await rp.authorization({ prompt: 'none' });
    const answer = new URL((await browser.follow(url)).stoppedAt!);
    assert.equal(answer.searchParams.get('error'), 'login_required');
  });
});
