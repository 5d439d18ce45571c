import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { post, signInToAccount } from '../account/helpers.ts';

const REDIRECT = 'http://localhost:9999/cb';

/** Follows an authorization URL through the sign-in page; the consent page (if any) or the redirect. */
async function untilConsent(browser: CookieClient, url: string, user: { email: string; password: string }): Promise<Page & { stoppedAt?: string }> {
  let page: Page & { stoppedAt?: string } = await browser.follow(url);
  if (!page.stoppedAt && page.body.includes('/login"')) page = await browser.submit(page, '/login', user);
  return page;
}

const asksConsent = (page: Page & { stoppedAt?: string }) => !page.stoppedAt && page.body.includes('/confirm"');

describe('remembered consent', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const store = () => server.server.services.store;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
  });
  after(() => server.stop());

  it('asks once: a second sign-in in a new browser goes straight back to the app, with the scopes allowed before', async () => {
    const user = await server.newUser('again');
    const first = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email' })).url, user);
    assert.ok(asksConsent(first), 'the first sign-in asks');
    await drive(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email' })).url, user);
    const { url, checks } = await rp.authorization({ scope: 'openid email' });
    const page = await untilConsent(new CookieClient(server.url), url, user);
    assert.equal(asksConsent(page), false, 'no consent page the second time');
    assert.ok(page.stoppedAt, 'back at the app');
    const tokens = await rp.callback(page.stoppedAt, checks);
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['email', 'openid'], 'the remembered scope is granted');
  });

  it('asks only for what is new, and remembers both', async () => {
    const user = await server.newUser('newscope');
    await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
    const page = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email profile' })).url, user);
    assert.ok(asksConsent(page), 'a new scope asks');
    assert.ok(page.body.includes('See your name and profile'), 'lists the new scope');
    assert.ok(!page.body.includes('See your email address'), 'does not ask again for what was allowed');
    const browser = new CookieClient(server.url);
    const { tokens } = await rp.signIn(browser, user, { scope: 'openid email profile' });
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['email', 'openid', 'profile']);
    const later = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid profile email' })).url, user);
    assert.equal(asksConsent(later), false, 'both scopes are remembered');
  });

  it('asks again when the app sends prompt=consent', async () => {
    const user = await server.newUser('prompt');
    await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
    const page = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email', prompt: 'consent' })).url, user);
    assert.ok(asksConsent(page));
  });

  it('never carries offline_access over: without consent now, no refresh token', async () => {
    const user = await server.newUser('offline');
    const first = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
    assert.ok(first.tokens.refresh_token, 'granted with consent (prompt=consent)');
    // The same scope without prompt=consent: oidc-provider drops offline_access, and nothing brings it back.
    const { url, checks } = await rp.authorization({ scope: 'openid email offline_access', prompt: 'login' });
    const page = await untilConsent(new CookieClient(server.url), url, user);
    assert.equal(asksConsent(page), false);
    const tokens = await rp.callback(page.stoppedAt!, checks);
    assert.equal(tokens.refresh_token, undefined, 'no refresh token without consent');
    // With prompt=consent the page asks, and lists it.
    const asked = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email offline_access' })).url, user);
    assert.ok(asksConsent(asked));
    assert.ok(asked.body.includes('Stay connected when you are not using it'));
  });

  it('"Remove access" forgets it: the next sign-in asks again, and "Connected apps" shows the app from its consent', async () => {
    const user = await server.newUser('remove');
    const browser = new CookieClient(server.url);
    await rp.signIn(browser, user, { scope: 'openid email' });
    // Signed out of the provider everywhere but the consent: a new browser, only the account page.
    const account = new CookieClient(server.url);
    const apps = await signInToAccount(account, user, '/account/apps');
    assert.match(apps.body, /<strong>Notes<\/strong>/);
    assert.match(apps.body, /See your email address/);
    assert.match(apps.body, /Allowed since/);
    const removed = await post(account, apps, '/account/apps/remove', { client: rp.client.clientId });
    assert.match(removed.body, /No apps have access to your account\./);
    const page = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid email' })).url, user);
    assert.ok(asksConsent(page), 'asks again after "Remove access"');
    assert.equal(await store().consents.find(user.id, rp.client.clientId), undefined);
  });

  it('is forgotten with the app: removing the client removes what users allowed it', async () => {
    const user = await server.newUser('gone');
    const temp = await RelyingParty.create(server.url, await server.addClient({ name: 'Temp', redirectUris: [REDIRECT] }));
    await temp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
    assert.ok(await store().consents.find(user.id, temp.client.clientId));
    await store().clients.remove(temp.client.clientId);
    assert.equal(await store().consents.find(user.id, temp.client.clientId), undefined);
  });

  it('merges consents given at once in parallel (no lost update)', async () => {
    const user = await server.newUser('parallel');
    const id = rp.client.clientId;
    await Promise.all([
      store().consents.remember(user.id, id, { scopes: ['openid', 'email'], claims: [], resources: { 'urn:api': ['read'] } }),
      store().consents.remember(user.id, id, { scopes: ['openid', 'profile'], claims: ['name'], resources: { 'urn:api': ['write'], 'urn:other': ['x'] } }),
    ]);
    const c = await store().consents.find(user.id, id);
    assert.deepEqual(c?.scopes, ['email', 'openid', 'profile']);
    assert.deepEqual(c?.claims, ['name']);
    assert.deepEqual(Object.fromEntries(Object.entries(c!.resources).map(([k, v]) => [k, [...v].sort()])), { 'urn:api': ['read', 'write'], 'urn:other': ['x'] });
  });
});

describe('a first-party app (registered with --first-party)', () => {
  let server: TestServer;
  let rp: RelyingParty;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Intranet', redirectUris: [REDIRECT], firstParty: true }));
  });
  after(() => server.stop());

  it('never shows a consent page, and gets every scope it asks for', async () => {
    const user = await server.newUser('first');
    const { url, checks } = await rp.authorization({ scope: 'openid email profile' });
    const page = await untilConsent(new CookieClient(server.url), url, user);
    assert.equal(asksConsent(page), false, 'no consent page');
    const tokens = await rp.callback(page.stoppedAt!, checks);
    const claims = tokens.claims()!;
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['email', 'openid', 'profile']);
    // A new scope in the same session: still no page.
    const browser = new CookieClient(server.url);
    await rp.signIn(browser, user, { scope: 'openid' });
    const more = await browser.follow((await rp.authorization({ scope: 'openid email profile' })).url);
    assert.ok(more.stoppedAt, 'straight back to the app');
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub);
    assert.equal(info.email, user.email);
  });

  it('still needs consent for offline_access (asked with prompt=consent), as OpenID Connect says', async () => {
    const user = await server.newUser('firstoffline');
    const page = await untilConsent(new CookieClient(server.url), (await rp.authorization({ scope: 'openid offline_access' })).url, user);
    assert.ok(asksConsent(page));
    assert.ok(page.body.includes('Stay connected when you are not using it'));
    await drive(new CookieClient(server.url), (await rp.authorization({ scope: 'openid offline_access' })).url, user);
  });
});
