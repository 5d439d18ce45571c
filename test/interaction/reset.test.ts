import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { accountKey } from '../../src/security/attempts.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import { decodeJwt } from '../helpers/jwt.ts';
import { median, rejectsWith, sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('password reset by email', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;
  let ledger: RelyingParty;
  let receiver: LogoutReceiver;
  const knex = () => server.server.services.database.knex;
  const store = () => server.server.services.store;
  const allowMail = async (email: string) =>
    knex()('counters').where({ key: `mail:reset:${(await store().users.findByEmail(email))!.id}` }).delete();

  before(async () => {
    mailbox = await startMailBox({ delayMs: 250 });
    receiver = await startLogoutReceiver();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url }, backchannelLogout: { allowPrivateNetwork: true } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: ['http://localhost:9999/cb'] }));
    ledger = await RelyingParty.create(server.url, await server.addClient({
      name: 'Ledger', redirectUris: ['http://localhost:9998/cb'], backchannelLogoutUri: receiver.url,
    }));
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
    await receiver.close();
  });

  /** The "Forgot your password?" page reached from an app's sign-in page, in a fresh browser. */
  async function forgotPage(browser = new CookieClient(server.url)) {
    const login = await browser.follow((await rp.authorization()).url);
    const m = /href="(\/interaction\/[^"]+\/reset)">Forgot your password\?/.exec(login.body);
    assert.ok(m, 'the sign-in page links to the reset page');
    return { browser, login, page: await browser.follow(m[1]!) };
  }

  /** Asks for a reset link and returns it from the mailbox. */
  async function requestLink(email: string, browser?: CookieClient) {
    const since = mailbox.messages.length;
    const { browser: b, page, login } = await forgotPage(browser);
    const answer = await b.submit(page, '/reset', { email });
    assert.equal(answer.status, 200);
    const mail = await mailbox.next(email, { since });
    assert.match(mail.subject, /Reset your Latchkey password/);
    return { browser: b, link: mailbox.link(mail), login, answer };
  }

  async function silent(browser: CookieClient, relyingParty = rp) {
    const page = await browser.follow((await relyingParty.authorization({ prompt: 'none' })).url);
    assert.ok(page.stoppedAt, `prompt=none answers at the redirect URI, got ${page.status}`);
    return new URL(page.stoppedAt).searchParams;
  }

  /** The answer to a sign-in with this password in a fresh browser. */
  async function signInAttempt(email: string, password: string): Promise<Page & { stoppedAt?: string }> {
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization()).url);
    return browser.submit(login, '/login', { email, password });
  }
  const signedInWith = (p: Page & { stoppedAt?: string }) => !!p.stoppedAt || /\/confirm"/.test(p.body);

  it('answers unknown, existing and disabled addresses alike (status, body, cookies, time) and mails only the owner', async () => {
    // Addresses of the same length, so that echoing the address does not change the body's size.
    const known = await server.addUser({ email: 'known.rr@example.com', password: 'known user password' });
    const disabled = await server.addUser({ email: 'disab.rr@example.com', password: 'disabled user password' });
    await store().users.setStatus(disabled.id, 'disabled');
    const cases = { known: known.email, disabled: disabled.email, unknown: 'ghost.rr@example.com' };
    const since = mailbox.messages.length;
    const answers: Record<string, { status: number; body: string; cookies: string[]; ms: number }[]> = { known: [], disabled: [], unknown: [] };
    // A warm-up round, then interleaved rounds so that drift hits every case alike.
    for (let round = 0; round < 9; round++) {
      for (const [name, email] of Object.entries(cases)) {
        // Every request for the known address sends a mail (the mail server takes 250 ms to accept one):
        // an answer that waited for the lookup or the mail would stand out.
        await allowMail(known.email);
        const { browser, page } = await forgotPage();
        const form = findForm(page.body, '/reset');
        const started = performance.now();
        const res = await fetch(new URL('/reset', server.url), {
          method: 'POST', redirect: 'manual',
          headers: { accept: 'text/html', cookie: browser.cookieHeader(), origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ ...form.hidden, email }),
        });
        const body = await res.text();
        const ms = performance.now() - started;
        if (round === 0) continue;
        answers[name]!.push({
          status: res.status,
          body: body.replaceAll(email, '<email>').replaceAll(form.hidden.csrf!, '<csrf>').replaceAll(form.hidden.interaction!, '<uid>'),
          cookies: res.headers.getSetCookie(),
          ms,
        });
      }
    }
    const reference = answers.known![0]!;
    assert.equal(reference.status, 200);
    assert.match(reference.body, /If an account exists for <email>, we sent a link/);
    assert.match(reference.body, /expires in 30 minutes/);
    assert.deepEqual(reference.cookies, []);
    for (const [name, list] of Object.entries(answers)) {
      for (const a of list) {
        assert.equal(a.status, reference.status, name);
        assert.equal(a.body, reference.body, name);
        assert.deepEqual(a.cookies, reference.cookies, name);
      }
    }
    // Within a factor of 2 (loopback answers take a few ms, so differences under 10 ms are noise).
    const medians = Object.values(answers).map((list) => median(list.map((a) => a.ms)));
    assert.ok(Math.max(...medians) < 2 * Math.max(Math.min(...medians), 10), `timing medians differ too much: ${medians.map((m) => m.toFixed(1)).join(', ')} ms`);

    for (let i = 0; i < 50 && mailbox.messages.slice(since).length < 9; i++) await sleep(100);
    const mails = mailbox.messages.slice(since);
    assert.equal(mails.filter((m) => m.to.includes(known.email)).length, 9, 'one mail per request for the owner');
    assert.equal(mails.filter((m) => !m.to.includes(known.email)).length, 0, 'nothing for the disabled or unknown address');
    const requested = await knex()('security_events').where({ type: 'password_reset.requested' }).count('* as n').first();
    assert.equal(Number(requested!.n), 27);
  });

  it('sends at most one reset mail a minute per account, answering the same', async () => {
    const mia = { email: 'mia@example.com', password: 'mia asks twice' };
    await server.addUser(mia);
    const since = mailbox.messages.length;
    await requestLink(mia.email);
    const { browser, page } = await forgotPage();
    const again = await browser.submit(page, '/reset', { email: mia.email });
    assert.equal(again.status, 200);
    assert.match(again.body, /If an account exists for mia@example.com/);
    await sleep(800);
    assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(mia.email)).length, 1);
  });

  it('changes the password with a single-use link, ends every session and token of the user, and signs no one in', async () => {
    const rosa = { email: 'rosa@example.com', password: 'rosa forgot this one' };
    const fresh = 'rosa chose a brand new passphrase';
    const user = await server.addUser(rosa);

    // Rosa is signed in elsewhere, in two apps, one with a refresh token.
    const elsewhere = new CookieClient(server.url);
    const { tokens } = await rp.signIn(elsewhere, rosa, { scope: 'openid email offline_access' });
    assert.ok(tokens.refresh_token);
    await ledger.signIn(elsewhere, rosa);
    assert.ok((await silent(elsewhere, ledger)).get('code'), 'the session is live before the reset');
    const grantIds = (await knex()('oidc_payloads').where({ account_id: user.id, kind: 'Grant' }).select('id')).map((r: { id: string }) => r.id);
    assert.equal(grantIds.length, 2, 'a grant per app');

    const { browser, link, login } = await requestLink(rosa.email);
    assert.match(link, new RegExp(`^${server.url}/reset/confirm\\?token=[A-Za-z0-9_-]{43}$`));
    const form = await browser.follow(link);
    assert.equal(form.status, 200);
    assert.match(form.body, /Choose a new password/);
    assert.match(form.body, /For the account rosa@example.com/);

    // A refused password does not cost the link.
    const weak = await browser.submit(form, '/reset/confirm', { password: 'password1' });
    assert.equal(weak.status, 400);
    assert.match(weak.body, /id="password-error">This password is too common/);
    const short = await browser.submit(form, '/reset/confirm', { password: 'short' });
    assert.match(short.body, /id="password-error">Use at least 8 characters/);

    const since = mailbox.messages.length;
    const done = await browser.submit(weak, '/reset/confirm', { password: fresh });
    assert.equal(done.status, 200);
    assert.match(done.body, /Password changed — sign in with your new password/);
    assert.equal(done.stoppedAt, undefined, 'no redirect to the app');
    const back = /href="(\/interaction\/[^"]+)">Sign in/.exec(done.body)![1]!;
    assert.ok(login.url.endsWith(back), 'the page links back to the sign-in it started from');

    // Never signed in: neither the browser that reset nor the one signed in before has a session now.
    assert.equal((await silent(browser)).get('error'), 'login_required');
    assert.equal((await silent(elsewhere)).get('error'), 'login_required');
    assert.equal((await silent(elsewhere, ledger)).get('error'), 'login_required');
    await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token is revoked');
    await assert.rejects(oidc.fetchUserInfo(rp.config, tokens.access_token, user.id), 'the access token is revoked');
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.refresh_token!)).active, false, 'the refresh token is inactive');
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is inactive');
    // Every grant is marked revoked, so a refresh another instance was answering during the reset stores nothing usable.
    const marked = (await knex()('revoked_grants').whereIn('grant_id', grantIds).select('grant_id')).map((r: { grant_id: string }) => r.grant_id);
    assert.deepEqual(new Set(marked), new Set(grantIds));

    // The app with back-channel logout is told, for this user.
    for (let i = 0; i < 50 && receiver.tokens.length === 0; i++) await sleep(100);
    assert.equal(receiver.tokens.length, 1);
    assert.equal(decodeJwt(receiver.tokens[0]!).payload.sub, user.id);

    const notice = await mailbox.next(rosa.email, { since });
    assert.match(notice.subject, /Your Latchkey password was changed/);

    assert.equal((await signInAttempt(rosa.email, rosa.password)).status, 401, 'the old password fails');
    assert.ok(signedInWith(await signInAttempt(rosa.email, fresh)), 'the new password works');

    // Single use: the link is dead, by GET and by POST.
    const reused = await browser.follow(link);
    assert.equal(reused.status, 410);
    assert.match(reused.body, /This link no longer works/);
    const replay = await browser.submit(form, '/reset/confirm', { password: 'a third new passphrase' });
    assert.equal(replay.status, 410);
    assert.ok(signedInWith(await signInAttempt(rosa.email, fresh)), 'the replay changed nothing');

    const events = await knex()('security_events').where({ user_id: user.id, type: 'password_reset.completed' }).first();
    assert.ok(events);
    const log = server.logText();
    assert.ok(!log.includes(fresh) && !log.includes(rosa.password), 'no password in the log');
    assert.ok(!log.includes(new URL(link).searchParams.get('token')!), 'no reset token in the log');
  });

  it('kills a link when a newer one is sent, and gives an expired link a clear page with a way to ask again', async () => {
    const sam = { email: 'sam@example.com', password: 'sam keeps forgetting' };
    await server.addUser(sam);
    const first = await requestLink(sam.email);
    await allowMail(sam.email);
    const second = await requestLink(sam.email);
    const stale = await first.browser.follow(first.link);
    assert.equal(stale.status, 410);
    assert.match(stale.body, /a newer link was sent/);
    // Its form asks for a new link.
    assert.match(stale.body, /<form method="post" action="\/reset"/);

    const form = await second.browser.follow(second.link);
    assert.equal(form.status, 200);
    await knex()('one_time_codes').where({ user_id: (await store().users.findByEmail(sam.email))!.id, purpose: 'password_reset' })
      .update({ expires_at: new Date(Date.now() - 1000) });
    const expired = await second.browser.follow(second.link);
    assert.equal(expired.status, 410);
    assert.match(expired.body, /This password reset link has expired/);
    const late = await second.browser.submit(form, '/reset/confirm', { password: 'too late for a new one' });
    assert.equal(late.status, 410);
    assert.ok(signedInWith(await signInAttempt(sam.email, sam.password)), 'the password did not change');

    await allowMail(sam.email);
    const since = mailbox.messages.length;
    const again = await second.browser.submit(expired, '/reset', { email: sam.email });
    assert.match(again.body, /If an account exists/);
    await mailbox.next(sam.email, { since });
  });

  it('lets exactly one of 8 parallel submissions of one link change the password', async () => {
    const pat = { email: 'pat@example.com', password: 'pat clicks twice' };
    await server.addUser(pat);
    const { browser, link } = await requestLink(pat.email);
    const form = await browser.follow(link);
    const hidden = findForm(form.body, '/reset/confirm').hidden;
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      browser.request('/reset/confirm', { form: { ...hidden, password: `parallel passphrase number ${i}` } })));
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [200, 410, 410, 410, 410, 410, 410, 410]);
    const winner = answers.findIndex((a) => a.status === 200);
    assert.ok(signedInWith(await signInAttempt(pat.email, `parallel passphrase number ${winner}`)));
  });

  it('clears a locked account: after the reset the owner signs in again', async () => {
    const lou = { email: 'lou@example.com', password: 'lou was locked out' };
    await server.addUser(lou);
    await knex()('counters').insert({ key: accountKey(lou.email), count: 100, updated_at: new Date(), expires_at: new Date(Date.now() + 3600_000) });
    const locked = await signInAttempt(lou.email, lou.password);
    assert.equal(locked.status, 429);
    assert.match(locked.body, /Reset your password by email/);

    const { browser, link } = await requestLink(lou.email);
    const done = await browser.submit(await browser.follow(link), '/reset/confirm', { password: 'lou is back in business' });
    assert.match(done.body, /Password changed/);
    assert.ok(signedInWith(await signInAttempt(lou.email, 'lou is back in business')));
  });

  it('confirms the address of an unverified account, since the link proved it', async () => {
    const user = await store().users.create({ email: 'vera@example.com', passwordHash: await server.server.services.hasher.hash('vera never confirmed') });
    assert.equal(user.emailVerifiedAt, null);
    const { browser, link } = await requestLink(user.email);
    await browser.submit(await browser.follow(link), '/reset/confirm', { password: 'vera resets instead' });
    assert.ok((await store().users.findById(user.id))!.emailVerifiedAt);
  });

  it('refuses the forms from another origin or without the CSRF token, and spends nothing', async () => {
    const cat = { email: 'cat@example.com', password: 'cat has nine passwords' };
    await server.addUser(cat);
    const { browser, page } = await forgotPage();
    const since = mailbox.messages.length;
    assert.equal((await browser.submit(page, '/reset', { email: cat.email }, { origin: 'https://evil.example' })).status, 403);
    assert.equal((await browser.request('/reset', { form: { email: cat.email } })).status, 403);

    const { link } = await requestLink(cat.email, browser);
    assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(cat.email)).length, 1, 'only the genuine request sent a mail');
    const form = await browser.follow(link);
    const token = new URL(link).searchParams.get('token')!;
    const foreign = await browser.submit(form, '/reset/confirm', { password: 'attacker chose this' }, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    const tokenless = await browser.request('/reset/confirm', { form: { token, password: 'attacker chose this' } });
    assert.equal(tokenless.status, 403);
    assert.equal((await signInAttempt(cat.email, 'attacker chose this')).status, 401);
    assert.equal((await browser.follow(link)).status, 200, 'the link is still live');
  });

  it('gives a malformed address a message on the field, and an overlong password a message instead of an error', async () => {
    const { browser, page } = await forgotPage();
    const bad = await browser.submit(page, '/reset', { email: 'not an address' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /<input id="email"[^>]*aria-invalid="true"[^>]*aria-describedby="email-error"/);
    assert.match(bad.body, /id="email-error">Enter a valid email address/);
    const huge = await browser.submit(page, '/reset', { email: `${'x'.repeat(5000)}@example.com` });
    assert.equal(huge.status, 400);
    assert.match(huge.body, /That email address is too long/);

    await server.addUser({ email: 'long@example.com', password: 'long passwords are fine' });
    const { browser: b, link } = await requestLink('long@example.com');
    const form = await b.follow(link);
    const overlong = await b.submit(form, '/reset/confirm', { password: 'p'.repeat(300) });
    assert.equal(overlong.status, 400);
    assert.match(overlong.body, /Use at most 256 characters/);
    assert.equal((await b.follow(link)).status, 200, 'the link is still live');
  });
});
