/**
 * The console's sign-in and session over HTTP: it signs in through /auth with PKCE at mfa; its cookie is
 * scoped to /admin, SameSite=Strict and HttpOnly; every answer is no-store and unframeable. Refused and
 * audited: a user without a console role, a sign-in that stayed at 1fa (the request edited on the way).
 * The session dies after console.idleSeconds without a request and console.absoluteSeconds after the
 * sign-in (a server with short limits, the row's clock moved back), with its provider session, and as
 * soon as its user is disabled or loses every role. "Sign out" ends the console and the provider session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ageSignIn, auditHead, consoleAuditRows, consoleUser, signInConsole, throughSignIn, totpNow } from './helpers.ts';

const IDLE = 60;
const ABSOLUTE = 300;

describe('the console\'s sign-in and session', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const knex = () => services().database.knex;

  before(async () => {
    server = await startTestServer({ config: { console: { idleSeconds: IDLE, absoluteSeconds: ABSOLUTE, stepUpSeconds: 300 } } });
  });
  after(() => server.stop());

  /** Is this client sent to sign in when it opens the console (rather than shown it)? */
  async function sentToSignIn(browser: CookieClient): Promise<boolean> {
    const res = await browser.request('/admin');
    if (res.status === 200) return false;
    assert.equal(res.status, 303, res.body.slice(0, 300));
    return new URL(res.headers.get('location')!).pathname === '/auth';
  }

  /** The session rows of a user. */
  const sessionsOf = (userId: string) => knex()('console_sessions').where({ user_id: userId });

  it('sends a browser without a session to /auth as latchkey-admin, with PKCE and at least mfa', async () => {
    const res = await new CookieClient(server.url).request('/admin/users');
    assert.equal(res.status, 303);
    const auth = new URL(res.headers.get('location')!);
    assert.equal(`${auth.origin}${auth.pathname}`, `${server.url}/auth`);
    assert.equal(auth.searchParams.get('client_id'), 'latchkey-admin');
    assert.equal(auth.searchParams.get('redirect_uri'), `${server.url}/admin/callback`);
    assert.equal(auth.searchParams.get('acr_values'), 'urn:latchkey:acr:mfa');
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const flow = res.headers.getSetCookie().find((c) => c.startsWith('lk.admin.flow='));
    assert.ok(flow && /path=\/admin/i.test(flow) && /httponly/i.test(flow), flow);
  });

  it('signs an administrator in with a second factor: a Strict, HttpOnly cookie for /admin, no-store, no framing, an audit row', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-admin');
    const seq = await auditHead(server);
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/admin/users');
    const pages: Response[] = [];
    const original = globalThis.fetch;
    // Every answer on the way back, to look at the callback's cookie.
    globalThis.fetch = async (input, init) => {
      const res = await original(input, init);
      pages.push(res.clone());
      return res;
    };
    let landed;
    try {
      landed = await throughSignIn(browser, server, admin, login);
    } finally {
      globalThis.fetch = original;
    }
    assert.equal(new URL(landed.url).pathname, '/admin/users');
    assert.equal(landed.status, 200);
    const cookie = pages.flatMap((r) => r.headers.getSetCookie()).find((c) => c.startsWith('lk.admin=') && !/expires=Thu, 01 Jan 1970/i.test(c));
    assert.ok(cookie, 'the console session cookie');
    assert.match(cookie, /path=\/admin(;|$)/i);
    assert.match(cookie, /samesite=strict/i);
    assert.match(cookie, /httponly/i);
    assert.doesNotMatch(cookie, /max-age|expires=/i, 'it lasts until the browser closes (the row holds the limits)');
    assert.equal(landed.headers.get('cache-control'), 'no-store');
    assert.match(landed.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(landed.headers.get('x-frame-options'), 'DENY');
    const [row] = (await sessionsOf(admin.id));
    assert.equal(row.acr, 'urn:latchkey:acr:mfa');
    const signIn = (await consoleAuditRows(server, seq)).find((r) => r.action === 'console.sign_in');
    assert.ok(signIn);
    assert.deepEqual([signIn.result, signIn.actor_type, signIn.actor_id, signIn.actor_acr, signIn.target_id], ['ok', 'user', admin.id, 'urn:latchkey:acr:mfa', admin.id]);
  });

  it('refuses a user without a console role: a 403 page, a denied audit row, no session', async () => {
    const nobody = await consoleUser(server, [], 'sess-norole');
    const seq = await auditHead(server);
    const browser = new CookieClient(server.url);
    const page = await throughSignIn(browser, server, nobody, await browser.follow('/admin'));
    assert.equal(page.status, 403);
    assert.match(page.body, /Your account has no console role/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal((await sessionsOf(nobody.id)).length, 0);
    assert.ok(await sentToSignIn(browser), 'still not in the console');
    const rows = (await consoleAuditRows(server, seq)).filter((r) => r.action === 'console.sign_in');
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.result, rows[0]!.actor_id, rows[0]!.actor_acr], ['denied', nobody.id, 'urn:latchkey:acr:mfa']);
    assert.match(rows[0]!.reason ?? '', /^console\.no_role/);
  });

  it('refuses a sign-in that stayed at 1fa (acr_values taken off the request): a 403 page and a denied audit row', async () => {
    // An administrator whose only way in is the password: the edited request completes at 1fa.
    const weak = await server.newUser('sess-1fa');
    await services().store.users.changeRoles(weak.id, { grant: ['admin'] });
    const seq = await auditHead(server);
    const browser = new CookieClient(server.url);
    const start = await browser.request('/admin');
    const auth = new URL(start.headers.get('location')!);
    auth.searchParams.delete('acr_values');
    const login = await browser.follow(auth.toString());
    const page = await browser.submit(login, '/login', { email: weak.email, password: weak.password });
    assert.equal(page.status, 403, page.body.slice(0, 300));
    assert.match(page.body, /needs a sign-in with two-step verification/);
    assert.equal((await sessionsOf(weak.id)).length, 0);
    const row = (await consoleAuditRows(server, seq)).find((r) => r.action === 'console.sign_in');
    assert.ok(row);
    assert.deepEqual([row.result, row.actor_id, row.actor_acr], ['denied', weak.id, 'urn:latchkey:acr:1fa']);
    assert.match(row.reason ?? '', /^console\.level_too_low/);
  });

  it('sends an administrator without a second factor to set one up (never a 1fa console)', async () => {
    const weak = await server.newUser('sess-nomfa');
    await services().store.users.changeRoles(weak.id, { grant: ['admin'] });
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/admin');
    const page = await browser.submit(login, '/login', { email: weak.email, password: weak.password });
    assert.ok(!page.stoppedAt && /\/interaction\//.test(page.url), page.url);
    assert.match(page.body, /two-step verification/i);
    assert.equal((await sessionsOf(weak.id)).length, 0);
  });

  it('asks an administrator with a passkey for phr: a sign-in at mfa goes back to /auth for the passkey, with no session yet', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-phr');
    await services().store.authenticators.insert({
      userId: admin.id, kind: 'webauthn', label: 'Laptop', externalId: `cred-${admin.id}`, publicKey: 'pAEDAyYgASFYIA', data: { counter: 0 },
    });
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/admin');
    assert.equal(new URL(login.url).searchParams.get('acr_values'), null, 'the sign-in page itself');
    const first = await browser.submit(login, '/login', { email: admin.email, password: admin.password });
    // The second step opens on the passkey: "try another way", the authenticator app.
    const step = await browser.follow(`${new URL(first.url).pathname}?method=${admin.totpId}`);
    const form = findForm(step.body, '/verify');
    // Stop at each hop: the callback must send the browser back to /auth asking for phr.
    let res = await browser.request(new URL(form.action, step.url).toString(), { form: { ...form.hidden, code: await totpNow(server, admin) } });
    const seen: string[] = [];
    while (res.status >= 300 && res.status < 400 && seen.length < 10) {
      const next = new URL(res.headers.get('location')!, res.url);
      seen.push(`${next.pathname}${next.pathname === '/auth' ? `?acr_values=${next.searchParams.get('acr_values')}` : ''}`);
      res = await browser.request(next.toString());
    }
    assert.ok(seen.indexOf('/admin/callback') >= 0 && seen.indexOf('/auth?acr_values=phr') > seen.indexOf('/admin/callback'),
      `the callback asked again for phr: ${seen.join(' ')}`);
    assert.match(seen.at(-1) ?? '', /^\/interaction\//, 'to the step-up for the passkey');
    assert.equal((await sessionsOf(admin.id)).length, 0, 'no console session at mfa');
  });

  it('ends after console.idleSeconds without a request, and moves the idle clock at each request', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-idle');
    const browser = await signInConsole(server, admin);
    await sessionsOf(admin.id).update({ last_seen_at: knex().raw(`now() - make_interval(secs => ?)`, [IDLE - 5]) });
    assert.equal(await sentToSignIn(browser), false, 'still live just before the idle limit');
    const [row] = await sessionsOf(admin.id);
    assert.ok(Date.now() - new Date(row.last_seen_at).getTime() < 5000, 'the request moved last_seen_at');
    await sessionsOf(admin.id).update({ last_seen_at: knex().raw(`now() - make_interval(secs => ?)`, [IDLE + 1]) });
    assert.equal(await sentToSignIn(browser), true, 'idle too long');
    assert.equal((await sessionsOf(admin.id)).length, 0, 'the dead session is gone');
  });

  it('ends console.absoluteSeconds after the sign-in, however busy', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-abs');
    const browser = await signInConsole(server, admin);
    await sessionsOf(admin.id).update({ created_at: knex().raw(`now() - make_interval(secs => ?)`, [ABSOLUTE - 5]) });
    assert.equal(await sentToSignIn(browser), false);
    await sessionsOf(admin.id).update({ created_at: knex().raw(`now() - make_interval(secs => ?)`, [ABSOLUTE + 1]) });
    assert.equal(await sentToSignIn(browser), true);
  });

  it('never renews an ended console session from the provider session: the password and the second step again', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-renew');
    const browser = await signInConsole(server, admin);
    await ageSignIn(server, admin, 400);
    await sessionsOf(admin.id).update({ last_seen_at: knex().raw(`now() - make_interval(secs => ?)`, [IDLE + 1]) });
    const again = await browser.follow('/admin/users');
    assert.match(again.body, /\/login"/, `the sign-in page, not the console: ${again.url}`);
    assert.doesNotMatch(again.body, /id="signed-in-as"/);
    const auth = new URL((await browser.request('/admin/users')).headers.get('location')!);
    assert.equal(auth.searchParams.get('max_age'), '300', 'a console sign-in is asked to be fresh');
    await signInConsole(server, admin, '/admin/users', browser);
  });

  it('refuses a provider sign-in older than the console asked for (max_age taken off the request): a 403 page and a denied row', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-stale');
    const browser = await signInConsole(server, admin);
    await ageSignIn(server, admin, 400);
    await sessionsOf(admin.id).delete();
    const seq = await auditHead(server);
    const auth = new URL((await browser.request('/admin')).headers.get('location')!);
    auth.searchParams.delete('max_age');
    const answer = await browser.follow(auth.toString());
    assert.equal(answer.status, 403, answer.body.slice(0, 300));
    assert.match(answer.body, /data-reason="stale"/);
    assert.equal((await sessionsOf(admin.id)).length, 0, 'no session');
    const row = (await consoleAuditRows(server, seq)).find((r) => r.action === 'console.sign_in');
    assert.deepEqual([row?.result, row?.actor_id], ['denied', admin.id]);
    assert.match(row?.reason ?? '', /console\.sign_in_stale/);
  });

  it('asks the signed-in administrator (login_hint) to confirm a step-up, and refuses one completed by another account', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-stepup-a');
    const other = await consoleUser(server, ['admin'], 'sess-stepup-b');
    const browser = await signInConsole(server, admin);
    await ageSignIn(server, admin, 400);
    const redirect = await browser.request('/admin/keys/rotate');
    const auth = new URL(redirect.headers.get('location')!);
    assert.equal(auth.searchParams.get('login_hint'), admin.email);
    const login = await browser.follow(auth.toString());
    assert.match(login.body, new RegExp(`value="${admin.email.replace('.', '\\.')}"`), 'the email is filled in');
    const seq = await auditHead(server);
    const step = await browser.submit(login, '/login', { email: other.email, password: other.password });
    const form = findForm(step.body, '/verify');
    let landed = await browser.follow(new URL(form.action, step.url).toString(), { form: { ...form.hidden, code: await totpNow(server, other) } });
    // The provider asks whether to end the other account's session first; confirm it, as a person would.
    // The provider ends the first account's session before the other's begins (its self-submitting form, as a browser would post it).
    assert.match(landed.body, /action="[^"]*\/session\/end\/confirm"/, 'the provider switches accounts');
    const confirm = findForm(landed.body, '/session/end/confirm');
    landed = await browser.follow(new URL(confirm.action, landed.url).toString(), { form: confirm.hidden });
    assert.equal(landed.status, 403, `${landed.url}: ${landed.body.slice(0, 300)}`);
    assert.match(landed.body, /data-reason="otherAccount"/);
    assert.equal((await sessionsOf(other.id)).length, 0, 'the other account got no console session from it');
    const row = (await consoleAuditRows(server, seq)).find((r) => r.action === 'console.sign_in');
    assert.deepEqual([row?.result, row?.actor_id], ['denied', other.id]);
    assert.match(row?.reason ?? '', /console\.other_account/);
  });

  it('takes many requests at once on one session (one conditional write each)', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-burst');
    const browser = await signInConsole(server, admin);
    const statuses = await Promise.all(Array.from({ length: 8 }, () => browser.request('/admin').then((r) => r.status)));
    assert.deepEqual(statuses, Array(8).fill(200));
  });

  it('ends when its user is disabled, loses every role, or its provider session ends', async () => {
    const first = await consoleUser(server, ['helpdesk'], 'sess-end');
    const b1 = await signInConsole(server, first);
    await services().store.users.setStatus(first.id, 'disabled');
    assert.equal(await sentToSignIn(b1), true, 'disabled');
    await services().store.users.setStatus(first.id, 'active');

    const second = await consoleUser(server, ['auditor'], 'sess-end');
    const b2 = await signInConsole(server, second);
    await services().store.users.changeRoles(second.id, { revoke: ['auditor'] });
    assert.equal(await sentToSignIn(b2), true, 'no role left');

    const third = await consoleUser(server, ['admin'], 'sess-end');
    const b3 = await signInConsole(server, third);
    await services().store.endAccountAccess(third.id, 60);
    assert.equal(await sentToSignIn(b3), true, 'provider session gone');
  });

  it('signs out of the console and of the provider session, with an audit row', async () => {
    const admin = await consoleUser(server, ['admin'], 'sess-out');
    const browser = await signInConsole(server, admin);
    const home = await browser.follow('/admin');
    const seq = await auditHead(server);
    const form = findForm(home.body, '/admin/sign-out');
    const out = await browser.request('/admin/sign-out', { form: form.hidden });
    assert.equal(out.status, 303);
    assert.equal(new URL(out.headers.get('location')!).pathname, '/session/end/success');
    assert.equal((await sessionsOf(admin.id)).length, 0);
    assert.equal((await services().store.sessions.listForUser(admin.id)).length, 0, 'the provider session ended too');
    const row = (await consoleAuditRows(server, seq)).find((r) => r.action === 'console.sign_out');
    assert.deepEqual([row?.result, row?.actor_id, row?.actor_acr], ['ok', admin.id, 'urn:latchkey:acr:mfa']);
    // A fresh sign-in asks for the password again.
    const again = await browser.follow('/admin');
    assert.match(again.body, /\/login"/);
  });

  it('shows a page to continue rather than signing in, to a browser arriving from another site without a session', async () => {
    const page = await new CookieClient(server.url).request('/admin/users', { headers: { 'sec-fetch-site': 'cross-site' } });
    assert.equal(page.status, 200);
    assert.match(page.body, /href="\/admin\/users"/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
  });
});
