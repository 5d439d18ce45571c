import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('pages: headers, CSRF and bad input', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const bob = { email: 'bob@example.com', password: 'bob has a long password' };

  before(async () => {
    server = await startTestServer();
    await server.addUser(bob);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  async function loginPage(browser: CookieClient) {
    const { url } = await rp.authorization();
    const page = await browser.follow(url);
    assert.equal(page.status, 200);
    assert.match(page.body, /\/login"/);
    return page;
  }

  it('serves the sign-in page with a strict CSP, no framing, no referrer to other sites and no inline script or style', async () => {
    const page = await loginPage(new CookieClient(server.url));
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('referrer-policy'), 'same-origin');
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('strict-transport-security'), null, 'no HSTS on a plain-http issuer');
    assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)/i, 'no inline script');
    assert.doesNotMatch(page.body, /\sstyle=|<style/i, 'no inline style');
  });

  it('sets the CSRF cookie HttpOnly and SameSite=Strict, and the interaction cookie HttpOnly and SameSite=Lax', async () => {
    const { url } = await rp.authorization();
    const res = await fetch(new URL(url), { redirect: 'manual' });
    const interaction = res.headers.getSetCookie().find((c) => c.startsWith('_interaction='));
    assert.ok(interaction, 'interaction cookie set');
    assert.match(interaction!, /httponly/i);
    assert.match(interaction!, /samesite=lax/i);
    const browser = new CookieClient(server.url);
    const page = await browser.follow(url);
    const raw = await fetch(page.url, { headers: { cookie: [...browser.jar].filter(([k]) => k !== 'lk.csrf').map(([k, v]) => `${k}=${v}`).join('; ') } });
    const csrfCookie = raw.headers.getSetCookie().find((c) => c.startsWith('lk.csrf='));
    assert.ok(csrfCookie);
    assert.match(csrfCookie!, /httponly/i);
    assert.match(csrfCookie!, /samesite=strict/i);
  });

  it('refuses a sign-in form posted from another origin', async () => {
    const browser = new CookieClient(server.url);
    const page = await loginPage(browser);
    const res = await browser.submit(page, '/login', bob, { origin: 'https://evil.example' });
    assert.equal(res.status, 403);
    assert.match(res.body, /another site/);
    assert.equal(res.stoppedAt, undefined, 'no redirect to the app');
  });

  it('refuses a sign-in form with a missing or forged CSRF token', async () => {
    const browser = new CookieClient(server.url);
    const page = await loginPage(browser);
    const form = findForm(page.body, '/login');
    const forged = await browser.request(new URL(form.action, page.url).toString(), { form: { ...bob, csrf: 'A'.repeat(43) } });
    assert.equal(forged.status, 403);
    const missing = await browser.request(new URL(form.action, page.url).toString(), { form: { ...bob } });
    assert.equal(missing.status, 403);
    // The genuine form still works afterwards: nothing was consumed by the refused attempts.
    const ok = await browser.submit(page, '/login', bob);
    assert.ok(ok.stoppedAt || /\/confirm"/.test(ok.body));
  });

  it('answers an oversized form with 413 and a clear page, not a stack trace', async () => {
    const browser = new CookieClient(server.url);
    const page = await loginPage(browser);
    const form = findForm(page.body, '/login');
    const res = await browser.request(new URL(form.action, page.url).toString(), { form: { ...form.hidden, email: bob.email, password: 'x'.repeat(200_000) } });
    assert.equal(res.status, 413);
    assert.match(res.body, /too large/);
    assert.doesNotMatch(res.body, /at .*\.(ts|js):\d+/);
  });

  it('answers a NUL character in an address or a form with 400 and a clear page, never a 500, and stores nothing', async () => {
    const browser = new CookieClient(server.url);
    for (const path of ['/admin/users/%00', '/account?x=%00', '/signup?email=a%00b', '/auth?client_id=%00']) {
      const res = await browser.request(path);
      assert.equal(res.status, 400, path);
      assert.match(res.body, /NUL character/);
      assert.doesNotMatch(res.body, /at .*\.(ts|js):\d+/);
    }
    const page = await loginPage(browser);
    const form = findForm(page.body, '/login');
    const res = await browser.request(new URL(form.action, page.url).toString(), { form: { ...form.hidden, email: 'bob\u0000@example.com', password: bob.password } });
    assert.equal(res.status, 400);
    assert.match(res.body, /NUL character/);
    assert.ok(!server.logText().includes('invalid byte sequence'), 'nothing reached the database');
  });

  it('answers a form with the wrong content type with 415', async () => {
    const browser = new CookieClient(server.url);
    const page = await loginPage(browser);
    const form = findForm(page.body, '/login');
    const res = await fetch(new URL(form.action, page.url), {
      method: 'POST', body: JSON.stringify(bob), redirect: 'manual',
      headers: { 'content-type': 'application/json', cookie: browser.cookieHeader(), origin: server.url },
    });
    assert.equal(res.status, 415);
  });

  it('shows a clear message for an overlong email or an empty password, and keeps the form usable', async () => {
    const browser = new CookieClient(server.url);
    const page = await loginPage(browser);
    const long = await browser.submit(page, '/login', { email: `${'a'.repeat(400)}@example.com`, password: 'whatever-password' });
    assert.equal(long.status, 400);
    assert.match(long.body, /too long/);
    const empty = await browser.submit(page, '/login', { email: bob.email, password: '' });
    assert.equal(empty.status, 400);
    assert.match(empty.body, /Enter your password/);
  });

  it('treats an unknown, expired or foreign interaction as a clear error page (HTML) or JSON error', async () => {
    const html = await fetch(`${server.url}/interaction/doesnotexist`, { headers: { accept: 'text/html' } });
    assert.equal(html.status, 400);
    assert.match(await html.text(), /expired or was started in another browser/);
    const json = await fetch(`${server.url}/interaction/doesnotexist`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 400);
    assert.deepEqual(Object.keys(await json.json()).sort(), ['error', 'message']);
  });

  it('counts malformed, oversized and forged session cookies as no session', async () => {
    for (const cookie of ['_session=garbage; _session.sig=garbage', `_session=${'x'.repeat(8000)}`, '_session=%%%; _session.sig=%E0%A4%A']) {
      const { url } = await rp.authorization({ prompt: 'none' });
      const res = await fetch(url, { headers: { cookie }, redirect: 'manual' });
      assert.ok([302, 303].includes(res.status), `status ${res.status}`);
      const location = new URL(res.headers.get('location')!);
      assert.equal(location.origin, 'http://localhost:9999');
      assert.equal(location.searchParams.get('error'), 'login_required');
    }
  });

  it('answers /healthz and /readyz', async () => {
    const h = await fetch(`${server.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const r = await fetch(`${server.url}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ok', database: 'ok' });
  });

  it('gives every response a request id', async () => {
    const res = await fetch(`${server.url}/healthz`);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });
});
