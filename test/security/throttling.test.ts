import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { accountKey } from '../../src/security/attempts.ts';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** A sign-in page for a fresh browser: the login form's action URL and hidden fields. */
async function loginForm(server: TestServer, rp: RelyingParty) {
  const browser = new CookieClient(server.url);
  const page = await browser.follow((await rp.authorization()).url);
  const form = findForm(page.body, '/login');
  return { browser, action: new URL(form.action, page.url).toString(), hidden: form.hidden };
}

async function attempt(server: TestServer, rp: RelyingParty, email: string, password: string, headers: Record<string, string> = {}) {
  const { browser, action, hidden } = await loginForm(server, rp);
  return browser.follow(action, { form: { ...hidden, email, password }, headers });
}

async function counter(server: TestServer, key: string): Promise<number> {
  const row = await server.server.services.database.knex('counters').where({ key }).first('count');
  return (row?.count as number | undefined) ?? 0;
}

describe('sign-in throttling', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const frank = { email: 'frank@example.com', password: 'frank remembers this one' };

  before(async () => {
    server = await startTestServer();
    await server.addUser(frank);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'T', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  it('ships the documented defaults: 5 free failures, delays up to 300 s, lock after 100', () => {
    const t = loadConfig({ env: {} }).throttle;
    assert.deepEqual(t, { freeFailures: 5, maxDelaySeconds: 300, lockAfter: 100, accountWindowSeconds: 86400, ipMaxFailures: 100, ipWindowSeconds: 900 });
  });

  it('counts 20 parallel failures exactly: every failure answered 401 is on the shared counter', async () => {
    const email = 'parallel@example.com';
    const forms = await Promise.all(Array.from({ length: 20 }, () => loginForm(server, rp)));
    const answers = await Promise.all(forms.map(({ browser, action, hidden }) =>
      browser.request(action, { form: { ...hidden, email, password: 'wrong wrong wrong' } })));
    const statuses = answers.map((a) => a.status);
    assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(','));
    assert.equal(await counter(server, accountKey(email)), statuses.filter((s) => s === 401).length);
    assert.ok(statuses.filter((s) => s === 401).length >= 5);
  });

  it('makes the account wait after 5 failures, even with the right password, and says how long', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await attempt(server, rp, frank.email, `wrong-${i}-password`)).status, 401);
    const refused = await attempt(server, rp, frank.email, frank.password);
    assert.equal(refused.status, 429);
    assert.match(refused.body, /Too many failed attempts\. Wait (?:1 second|(?!1 )\d+ seconds) and try again\./);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(refused.stoppedAt, undefined, 'no code while throttled');
    // The delay is 1 s after the 5th failure: once it has passed, the owner signs in and the counter resets.
    await new Promise((r) => setTimeout(r, 1100));
    const ok = await attempt(server, rp, frank.email, frank.password);
    assert.ok(ok.stoppedAt || /\/confirm"/.test(ok.body), `signed in after the delay (${ok.status})`);
    assert.equal(await counter(server, accountKey(frank.email)), 0);
  });

  it('answers an unknown address exactly like a known one while throttled', async () => {
    const ghost = 'ghost-x@example.com';
    const known = 'known-x@example.com';
    await server.addUser({ email: known, password: 'known x password!' });
    for (let i = 0; i < 5; i++) {
      await attempt(server, rp, ghost, 'wrong password 1');
      await attempt(server, rp, known, 'wrong password 1');
    }
    const a = await attempt(server, rp, ghost, 'wrong password 2');
    const b = await attempt(server, rp, known, 'wrong password 2');
    assert.equal(a.status, 429);
    assert.equal(b.status, 429);
    const strip = (s: string) => s.replace(/\/interaction\/[^/"]+/g, '').replace(/value="[^"]*"/g, '');
    assert.equal(strip(a.body), strip(b.body));
  });

  it('locks the account after 100 consecutive failures until the failures are cleared (a password reset)', async () => {
    const email = 'locked@example.com';
    const password = 'locked user password';
    await server.addUser({ email, password });
    // 99 failures long ago (their delay has passed), then one more now.
    await server.server.services.database.knex('counters').insert({
      key: accountKey(email), count: 99, updated_at: new Date(Date.now() - 3600_000), expires_at: new Date(Date.now() + 3600_000),
    });
    assert.equal((await attempt(server, rp, email, 'one more wrong one')).status, 401);
    const locked = await attempt(server, rp, email, password);
    assert.equal(locked.status, 429);
    assert.match(locked.body, /Reset your password by email/);
    assert.equal(locked.headers.get('retry-after'), null);
    await server.server.services.attempts.clear(email);
    const ok = await attempt(server, rp, email, password);
    assert.ok(ok.stoppedAt || /\/confirm"/.test(ok.body));
  });
});

describe('throttling per IP address', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startTestServer({ config: { throttle: { ipMaxFailures: 6 } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'T', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  it('makes one address wait after too many failures across different accounts', async () => {
    for (let i = 0; i < 6; i++) assert.equal((await attempt(server, rp, `spray${i}@example.com`, 'Summer2026!')).status, 401);
    const refused = await attempt(server, rp, 'spray-next@example.com', 'Summer2026!');
    assert.equal(refused.status, 429);
  });
});
