import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { projectRoot } from '../../src/paths.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import { sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailedApp, type MailedApp } from '../helpers/mailed-app.ts';
import type { MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const href = (page: Page, pattern: RegExp) => {
  const m = pattern.exec(page.body);
  assert.ok(m, `no link matching ${pattern} in ${page.url}`);
  return m[1]!.replaceAll('&amp;', '&');
};

describe('sign-up and email verification', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;
  const knex = () => server.server.services.database.knex;
  const userCount = async () => Number((await knex()('users').count('* as n').first())!.n);
  const userByEmail = (email: string) => server.server.services.store.users.findByEmail(email);
  /** Lets the next verification mail for the user go out at once (they are limited to one a minute). */
  const allowMail = async (kind: string, email: string) => knex()('counters').where({ key: `mail:${kind}:${(await userByEmail(email))!.id}` }).delete();

  /** A fresh browser at the sign-up form reached from an app's sign-in page. */
  async function signUpPage() {
    const browser = new CookieClient(server.url);
    const { url, checks } = await rp.authorization();
    const login = await browser.follow(url);
    const page = await browser.follow(href(login, /href="(\/interaction\/[^"]+\/signup)"/));
    return { browser, page, checks, login };
  }

  async function signUp(fields: Record<string, string>) {
    const { browser, page, checks } = await signUpPage();
    const answer = await browser.submit(page, '/signup', fields);
    return { browser, answer, checks };
  }

  /** Signs in at a fresh authorization request with email and password; the page after the password. */
  async function signInPage(browser: CookieClient, email: string, password: string, params: Record<string, string> = {}) {
    const { url, checks } = await rp.authorization(params);
    const login = await browser.follow(url);
    return { answer: await browser.submit(login, '/login', { email, password }), checks };
  }

  let shop: MailedApp;
  before(async () => {
    shop = await startMailedApp('Shop');
    ({ server, mailbox, rp } = shop);
  });
  after(() => shop.stop());

  it('ships sign-up on, 24-hour verification links and 30-minute reset links; the production example turns sign-up off', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.signUp.enabled, true);
    assert.equal(config.ttl.emailVerifyLink, 86400);
    assert.equal(config.ttl.passwordResetLink, 1800);
    const example = parseYaml(readFileSync(path.join(projectRoot, 'config', 'production.example.yaml'), 'utf8')) as { signUp: { enabled: boolean } };
    assert.equal(example.signUp.enabled, false);
    assert.equal(loadConfig({ env: { LATCHKEY_SIGN_UP_ENABLED: 'false' } }).signUp.enabled, false);
  });

  it('refuses weak, common, short and overlong passwords with a message on the field, and stores nothing', async () => {
    const before = await userCount();
    const cases: [string, RegExp][] = [
      ['short', /Use at least 8 characters/],
      ['password1', /too common or has appeared in a data breach/],
      ['Iloveyou123', /too common or has appeared in a data breach/],
      ['x'.repeat(257), /Use at most 256 characters/],
      ['y'.repeat(2000), /Use at most 256 characters/],
      ['weak.pw@example.com', /Do not use your email address/],
      ['', /Enter a password/],
    ];
    for (const [password, message] of cases) {
      const { answer } = await signUp({ name: 'Wendy', email: 'weak.pw@example.com', password });
      assert.equal(answer.status, 400, password.slice(0, 20));
      assert.match(answer.body, message);
      assert.match(answer.body, /<input id="password"[^>]*aria-invalid="true"[^>]*aria-describedby="password-error password-hint"/);
      assert.match(answer.body, /<p class="error field-error" id="password-error">/);
      assert.match(answer.body, /value="weak.pw@example.com"/, 'the email is kept');
      assert.doesNotMatch(answer.body, /<input id="password"[^>]*value=/, 'the password is never echoed');
    }
    assert.equal(await userCount(), before);
    assert.equal(mailbox.messages.filter((m) => m.to.includes('weak.pw@example.com')).length, 0);
  });

  it('refuses a malformed or overlong email and name with messages tied to their fields, and stores nothing', async () => {
    const before = await userCount();
    const bad = await signUp({ name: `Evil\u0007Bell`, email: 'not-an-address', password: 'a perfectly fine passphrase' });
    assert.equal(bad.answer.status, 400);
    assert.match(bad.answer.body, /id="email-error">Enter a valid email address/);
    assert.match(bad.answer.body, /id="name-error">Your name cannot contain control characters/);
    assert.match(bad.answer.body, /<input id="email"[^>]*aria-describedby="email-error"/);
    const bidi = await signUp({ name: 'Mallory\u202Egnp.exe', email: 'bidi@example.com', password: 'a perfectly fine passphrase' });
    assert.equal(bidi.answer.status, 400);
    assert.match(bidi.answer.body, /id="name-error">Your name cannot contain control characters or text-direction marks/);
    const long = await signUp({ name: 'n'.repeat(201), email: `${'e'.repeat(320)}@example.com`, password: 'a perfectly fine passphrase' });
    assert.equal(long.answer.status, 400);
    assert.match(long.answer.body, /id="email-error">That email address is too long/);
    assert.match(long.answer.body, /id="name-error">Use at most 200 characters for your name/);
    assert.ok(long.answer.body.length < 10_000, 'long input is cut, not echoed in full');
    const { browser, page } = await signUpPage();
    const bare = await browser.request('/signup', { form: { csrf: findForm(page.body, '/signup').hidden.csrf! } });
    assert.equal(bare.status, 400, 'missing fields are a form message, not an error page');
    assert.match(bare.body, /id="email-error">Enter your email address/);
    assert.match(bare.body, /id="password-error">Enter a password/);
    assert.equal(await userCount(), before);
  });

  it('signs up, mails a link, confirms it with a button, and the app then gets tokens with email_verified true', async () => {
    const email = 'nora@example.com';
    const password = 'nora picks a long passphrase';
    const { browser, page, login, checks } = await signUpPage();
    assert.match(login.body, /Create an account/);
    assert.match(page.body, /<h1>Create an account<\/h1>/);
    const back = href(page, /href="(\/interaction\/[^"]+)">Back to sign in/);
    assert.ok(login.url.endsWith(back), 'Back to sign in returns to the same sign-in');

    const since = mailbox.messages.length;
    const sent = await browser.submit(page, '/signup', { name: 'Nora', email, password });
    assert.equal(sent.status, 200);
    assert.match(sent.body, /Check your email/);
    const mail = await mailbox.next(email, { since });
    assert.match(mail.subject, /Confirm your email address/);
    const link = mailbox.link(mail);
    assert.match(link, new RegExp(`^${server.url}/verify\\?token=[A-Za-z0-9_-]{43}$`));

    const user = (await userByEmail(email))!;
    assert.equal(user.name, 'Nora');
    assert.equal(user.emailVerifiedAt, null, 'created unverified');
    assert.match(user.passwordHash!, /^\$argon2id\$/);

    // Opening the link (a mail scanner does that too) spends nothing; the button does.
    const confirm = await browser.follow(link);
    assert.equal((await browser.follow(link)).status, 200);
    assert.equal(confirm.status, 200);
    assert.match(confirm.body, /Confirm that nora@example.com is your email address/);
    assert.equal((await userByEmail(email))!.emailVerifiedAt, null);
    const done = await browser.submit(confirm, '/verify');
    assert.equal(done.status, 200);
    assert.match(done.body, /Email confirmed/);
    assert.ok((await userByEmail(email))!.emailVerifiedAt);
    const events = await knex()('security_events').where({ user_id: user.id }).pluck('type');
    assert.ok(events.includes('user.created') && events.includes('email.verified'), events.join());

    // The sign-in it started from is alive: continue there, sign in, consent; the app redeems its code.
    const signIn = await browser.follow(href(done, /href="(\/interaction\/[^"]+)">Continue signing in/));
    assert.match(signIn.body, /<h1>Sign in<\/h1>/);
    let answer = await browser.submit(signIn, '/login', { email, password });
    if (!answer.stoppedAt) answer = await browser.submit(answer, '/confirm');
    assert.ok(answer.stoppedAt, 'back at the app');
    const tokens = await rp.callback(answer.stoppedAt, checks);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, user.id);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub);
    assert.equal(info.email, email);
    assert.equal(info.email_verified, true);
    assert.equal(info.name, 'Nora');

    const log = server.logText();
    assert.ok(!log.includes(password), 'the password is not logged');
    assert.ok(!log.includes(new URL(link).searchParams.get('token')!), 'the link token is not logged');
  });

  it('answers an address that already has an account exactly like a new one, and mails its owner instead', async () => {
    const owner = await server.addUser({ email: 'owner.aa@example.com', password: 'the owner password here' });
    const before = await userCount();
    const answers = [];
    for (const email of ['owner.aa@example.com', 'newbie.a@example.com']) {
      const { browser, page } = await signUpPage();
      const csrf = findForm(page.body, '/signup').hidden.csrf!;
      const interaction = findForm(page.body, '/signup').hidden.interaction!;
      const jar = browser.cookieHeader();
      const answer = await browser.submit(page, '/signup', { name: '', email, password: 'someone else wants this one' });
      answers.push({
        status: answer.status,
        body: answer.body.replaceAll(email, '<email>').replaceAll(csrf, '<csrf>').replaceAll(interaction, '<uid>'),
        cookiesChanged: browser.cookieHeader() !== jar,
        setCookie: answer.headers.getSetCookie(),
      });
    }
    assert.equal(answers[0]!.status, 200);
    assert.deepEqual(answers[0], answers[1]);
    assert.equal(answers[0]!.cookiesChanged, false);
    assert.equal(await userCount(), before + 1, 'only the new address got an account');

    const toOwner = await mailbox.next('owner.aa@example.com');
    assert.match(toOwner.subject, /Someone tried to create a Latchkey account with your email/);
    assert.match(toOwner.text, /you already have one/);
    assert.equal(mailbox.link(toOwner), `${server.url}/reset`);
    const toNew = await mailbox.next('newbie.a@example.com');
    assert.match(toNew.subject, /Confirm your email address/);
    const stored = (await userByEmail('owner.aa@example.com'))!;
    assert.equal(stored.passwordHash, owner.passwordHash, 'the existing account is untouched');
    assert.ok(stored.emailVerifiedAt);
    assert.equal(mailbox.messages.filter((m) => m.to.includes('owner.aa@example.com')).length, 1);
  });

  it('does not sign in an unverified account even with the right password: it sends a new link, at most one a minute', async () => {
    const email = 'una@example.com';
    const password = 'una never opened the mail';
    await signUp({ email, password });
    const first = mailbox.link(await mailbox.next(email));
    const user = (await userByEmail(email))!;

    // The sign-up mail used this minute's allowance; once it has passed, the sign-in sends a new link.
    await allowMail('verify', email);
    const since = mailbox.messages.length;
    const browser = new CookieClient(server.url);
    const { answer } = await signInPage(browser, email, password);
    assert.equal(answer.status, 403);
    assert.match(answer.body, /Confirm your email first — we sent you a new link/);
    assert.equal(answer.stoppedAt, undefined, 'no code for the app');
    const second = mailbox.link(await mailbox.next(email, { since }));
    assert.notEqual(second, first);

    // Right away again: the same answer, but no third mail.
    const again = await signInPage(browser, email, password);
    assert.equal(again.answer.status, 403);
    await sleep(700);
    assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(email)).length, 1, 'one mail a minute');
    // No session either: a silent request still needs a sign-in.
    const silent = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
    assert.equal(new URL(silent.stoppedAt!).searchParams.get('error'), 'login_required');

    // The first link was superseded by the second one.
    const stale = await browser.follow(first);
    assert.equal(stale.status, 410);
    assert.match(stale.body, /This link no longer works/);
    assert.match(stale.body, /newer link was sent/);
    assert.equal((await userByEmail(email))!.emailVerifiedAt, null);

    // The new link works, once; the page links back to the sign-in that sent it.
    const page = await browser.follow(second);
    const done = await browser.submit(page, '/verify');
    assert.match(done.body, /Email confirmed/);
    assert.match(done.body, /Continue signing in/);
    const reused = await browser.submit(page, '/verify');
    assert.equal(reused.status, 410);
    assert.match(reused.body, /This link no longer works/);
    assert.equal((await browser.follow(second)).status, 410);

    const signedIn = await signInPage(browser, email, password);
    assert.ok(signedIn.answer.stoppedAt || /\/confirm"/.test(signedIn.answer.body), 'verified: the sign-in goes on');
    const events = await knex()('security_events').where({ user_id: user.id, type: 'sign_in.unverified' }).count('* as n').first();
    assert.equal(Number(events!.n), 2);
  });

  it('confirms exactly once when a link is submitted 10 times in parallel', async () => {
    const email = 'twice@example.com';
    await signUp({ email, password: 'double clicker passphrase' });
    const browser = new CookieClient(server.url);
    const page = await browser.follow(mailbox.link(await mailbox.next(email)));
    const hidden = findForm(page.body, '/verify').hidden;
    const answers = await Promise.all(Array.from({ length: 10 }, () => browser.request('/verify', { form: hidden })));
    assert.deepEqual(answers.map((a) => a.status).sort(), [200, 410, 410, 410, 410, 410, 410, 410, 410, 410]);
    const user = (await userByEmail(email))!;
    const verified = await knex()('security_events').where({ user_id: user.id, type: 'email.verified' }).count('* as n').first();
    assert.equal(Number(verified!.n), 1);
  });

  it('"Check your email" sends a new link on request, once a minute, leading back to the sign-in it came from', async () => {
    const email = 'resend.me@example.com';
    const { browser, answer } = await signUp({ email, password: 'resend me a link please' });
    assert.match(answer.body, /Check your email/);
    const first = mailbox.link(await mailbox.next(email));
    assert.match(answer.body, /id="resend-verification"/);
    // Asked again at once: the same answer, but no second mail inside the minute.
    const since = mailbox.messages.length;
    const soon = await browser.submit(answer, '/verify/resend');
    assert.equal(soon.status, 200);
    assert.match(soon.body, /we sent it a new link/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(email)).length, 0, 'within the minute: nothing sent');
    // After the minute, a new link that still returns to the sign-in; the first one is superseded.
    await allowMail('verify', email);
    const again = await browser.submit(soon, '/verify/resend');
    assert.match(again.body, /id="resend-verification"/, 'and can be asked for again');
    const fresh = mailbox.link(await mailbox.next(email, { since }));
    assert.notEqual(fresh, first);
    const done = await browser.submit(await browser.follow(fresh), '/verify');
    assert.match(done.body, /Email confirmed/);
    assert.match(done.body, /href="\/interaction\//, 'back to the sign-in it came from');
  });

  it('gives an expired link a clear page whose form sends a new link', async () => {
    const email = 'elle@example.com';
    await signUp({ email, password: 'elle waited too long' });
    const link = mailbox.link(await mailbox.next(email));
    const user = (await userByEmail(email))!;
    await knex()('one_time_codes').where({ user_id: user.id, purpose: 'email_verify' }).update({ expires_at: new Date(Date.now() - 1000) });
    const browser = new CookieClient(server.url);
    const expired = await browser.follow(link);
    assert.equal(expired.status, 410);
    assert.match(expired.body, /This link no longer works/);
    assert.match(expired.body, /has expired/);

    // Posting the expired token confirms nothing either.
    const forged = await browser.request('/verify', { form: { csrf: findForm(expired.body, '/verify/resend').hidden.csrf!, token: new URL(link).searchParams.get('token')! } });
    assert.equal(forged.status, 410);
    assert.equal((await userByEmail(email))!.emailVerifiedAt, null);

    await allowMail('verify', email);
    const since = mailbox.messages.length;
    const resent = await browser.submit(expired, '/verify/resend', { email });
    assert.equal(resent.status, 200);
    assert.match(resent.body, /we sent it a new link/);
    const fresh = mailbox.link(await mailbox.next(email, { since }));
    const done = await browser.submit(await browser.follow(fresh), '/verify');
    assert.match(done.body, /Email confirmed/);
    assert.match(done.body, /Go back to the app and sign in/, 'no sign-in to return to');

    // The resend form answers an unknown address the same way, and mails nobody.
    const other = await browser.submit(await browser.follow(link), '/verify/resend', { email: 'ghost@example.com' });
    assert.equal(other.status, 200);
    assert.match(other.body, /we sent it a new link/);
    const invalid = await browser.submit(await browser.follow(link), '/verify/resend', { email: 'nope' });
    assert.equal(invalid.status, 400);
    assert.match(invalid.body, /id="email-error">Enter a valid email address/);
  });

  it('refuses the sign-up and confirmation forms from another origin or without the CSRF token', async () => {
    const before = await userCount();
    const { browser, page } = await signUpPage();
    const fields = { email: 'csrf.victim@example.com', password: 'attacker chosen password' };
    const foreign = await browser.submit(page, '/signup', fields, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /sent from another site/);
    const tokenless = await browser.request('/signup', { form: { ...fields, csrf: '' } });
    assert.equal(tokenless.status, 403);
    const otherBrowser = new CookieClient(server.url);
    const stolen = await otherBrowser.request('/signup', { form: { ...fields, csrf: findForm(page.body, '/signup').hidden.csrf! } });
    assert.equal(stolen.status, 403, "another browser's token does not work");
    assert.equal(await userCount(), before);

    await signUp({ email: 'csrf.verify@example.com', password: 'a good long passphrase' });
    const link = mailbox.link(await mailbox.next('csrf.verify@example.com'));
    const confirm = await browser.follow(link);
    assert.equal((await browser.submit(confirm, '/verify', {}, { origin: 'https://evil.example' })).status, 403);
    assert.equal((await browser.request('/verify', { form: { token: new URL(link).searchParams.get('token')! } })).status, 403);
    assert.equal((await userByEmail('csrf.verify@example.com'))!.emailVerifiedAt, null);
    assert.match((await browser.submit(confirm, '/verify')).body, /Email confirmed/, 'the refused posts did not spend the link');
  });

  it('serves the sign-up page with no inline script or style and keeps the form usable without JavaScript', async () => {
    const { page } = await signUpPage();
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.doesNotMatch(page.body, /<script>|<style|\sstyle="|\son[a-z]+="/i);
    assert.match(page.body, /<script src="\/assets\/show-password.js" defer><\/script>/);
    assert.match(page.body, /<label class="inline" hidden><input type="checkbox" data-show-password="password">/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
  });
});

describe('sign-up turned off', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startTestServer({ config: { signUp: { enabled: false } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Closed', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  it('shows no "Create an account" link and answers /signup with a clear 404 page', async () => {
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization()).url);
    assert.match(login.body, /<h1>Sign in<\/h1>/);
    assert.doesNotMatch(login.body, /Create an account|\/signup/);
    assert.match(login.body, /Forgot your password\?/);
    const uid = /\/interaction\/([^/"]+)\/login/.exec(login.body)![1]!;
    for (const path of ['/signup', `/interaction/${uid}/signup`]) {
      const page = await browser.follow(path);
      assert.equal(page.status, 404);
      assert.match(page.body, /Creating an account is not possible here/);
    }
    const csrf = findForm(login.body, '/login').hidden.csrf!;
    const post = await browser.request('/signup', { form: { csrf, email: 'x@example.com', password: 'a fine long passphrase' } });
    assert.equal(post.status, 404);
    assert.equal(Number((await server.server.services.database.knex('users').count('* as n').first())!.n), 0);
  });
});
