import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { allFormFields, formFields, hops, post, signInToAccount } from './helpers.ts';

describe('the account page over HTTP', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({
      name: 'Notes', redirectUris: ['http://localhost:9999/cb'], postLogoutRedirectUris: ['http://localhost:9999/bye'],
    }));
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  const store = () => server.server.services.store;

  /** A fresh user for each scenario, so that none depends on another. */
  const newUser = () => server.newUser('user');

  /** A silent authorization at the app: the code, or the error, it gets back. */
  async function silentAtApp(browser: CookieClient) {
    const { url } = await rp.authorization({ prompt: 'none' });
    const page = await browser.follow(url);
    assert.ok(page.stoppedAt, `prompt=none must answer at the redirect URI, got ${page.status} at ${page.url}`);
    return new URL(page.stoppedAt);
  }

  const sentToSignIn = (res: { status: number; headers: Headers }) => {
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, `${server.url}/auth`);
    assert.equal(location.searchParams.get('client_id'), 'latchkey-account');
    return location;
  };

  it('sends a browser without an account session through an authorization request with PKCE, state and nonce', async () => {
    const browser = new CookieClient(server.url);
    const res = await browser.request('/account');
    const auth = sentToSignIn(res);
    assert.equal(auth.searchParams.get('response_type'), 'code');
    assert.equal(auth.searchParams.get('scope'), 'openid');
    assert.equal(auth.searchParams.get('redirect_uri'), `${server.url}/account/callback`);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(auth.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(auth.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
    const flow = res.headers.getSetCookie().find((c) => c.startsWith('lk.account.flow='));
    assert.ok(flow, 'the sign-in in progress is kept in a cookie');
    assert.match(flow!, /httponly/i);
    assert.match(flow!, /samesite=lax/i);
    assert.match(flow!, /path=\/account/i);
    assert.match(flow!, /expires=/i, 'short-lived');
  });

  it('after signing in shows the account page without a consent screen, while other apps still ask for consent', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    assert.match(login.body, /Latchkey account/, 'the sign-in page names the account page as the app');
    const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(page.status, 200);
    assert.equal(page.url, `${server.url}/account`);
    assert.doesNotMatch(page.body, /\/confirm"/, 'no consent page on the way');
    assert.match(page.body, new RegExp(`Signed in as ${user.email}`));
    assert.match(page.body, /<h1>Profile<\/h1>/);
    assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)/i, 'no inline script');
    assert.doesNotMatch(page.body, /\sstyle=|<style/i, 'no inline style');
    assert.equal(page.headers.get('cache-control'), 'no-store');

    // The same browser, signed in at the provider, still gets the consent page for an ordinary app.
    const { url } = await rp.authorization();
    const consent = await browser.follow(url);
    assert.equal(consent.stoppedAt, undefined);
    assert.match(consent.body, /\/confirm"/, 'Notes asks for consent');
    assert.match(consent.body, /Allow Notes\?/);
  });

  it('never shows the account page to an absent or pending sign-in, nor for forged, malformed or oversized cookies', async () => {
    const user = await newUser();
    for (const path of ['/account', '/account/security', '/account/sessions', '/account/apps', '/account/activity', '/account/password']) {
      sentToSignIn(await new CookieClient(server.url).request(path));
    }
    // Pending: the sign-in page is open, nothing has been proved yet.
    const pending = new CookieClient(server.url);
    const login = await pending.follow('/account');
    assert.match(login.body, /\/login"/);
    sentToSignIn(await pending.request('/account'));
    const wrong = await pending.submit(login, '/login', { email: user.email, password: 'not the password' });
    assert.equal(wrong.status, 401);
    sentToSignIn(await pending.request('/account/sessions'));

    const signedIn = new CookieClient(server.url);
    await signInToAccount(signedIn, user);
    const real = signedIn.jar.get('lk.account')!;
    const [id, sig] = real.split('.');
    const forged = [
      'garbage', `${id}.${'A'.repeat(43)}`, `${'B'.repeat(43)}.${sig}`, `${id}`, `${id}.${sig}x`, 'x'.repeat(6000), '%%%.%E0%A4%A', `${id}.${sig}.${sig}`,
    ];
    for (const value of forged) {
      const res = await fetch(`${server.url}/account`, { headers: { cookie: `lk.account=${value}` }, redirect: 'manual' });
      sentToSignIn(res);
    }
    const ok = await fetch(`${server.url}/account`, { headers: { cookie: `lk.account=${real}` }, redirect: 'manual' });
    assert.equal(ok.status, 200, 'the genuine cookie works');
  });

  it('sets the account cookie HttpOnly, SameSite=Lax and scoped to /account', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    const form = formFields(login, new URL(login.url).pathname + '/login');
    const steps = await hops(browser, `${new URL(login.url).pathname}/login`, { form: { ...form, ...user } });
    const callback = steps.find((s) => new URL(s.url).pathname === '/account/callback');
    assert.ok(callback, 'the provider sends the browser to /account/callback');
    const cookie = callback!.headers.getSetCookie().find((c) => c.startsWith('lk.account='));
    assert.ok(cookie);
    assert.match(cookie!, /httponly/i);
    assert.match(cookie!, /samesite=lax/i);
    assert.match(cookie!, /path=\/account/i);
    assert.doesNotMatch(cookie!, /secure/i, 'not Secure on a plain-http issuer');
    assert.equal(steps.at(-1)!.status, 200);
  });

  it('redeems a code once, and only with the flow cookie of the browser that asked for it', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    const flowCookie = browser.jar.get('lk.account.flow')!;
    const action = `${new URL(login.url).pathname}/login`;
    const steps = await hops(browser, action, { form: { ...formFields(login, action), ...user } });
    const callback = steps.find((s) => new URL(s.url).pathname === '/account/callback')!;
    const newSession = (res: Response) => res.headers.getSetCookie().some((c) => c.startsWith('lk.account=') && !/expires=Thu, 01 Jan 1970/i.test(c));
    const replay = await fetch(callback.url, { headers: { cookie: `lk.account.flow=${flowCookie}` }, redirect: 'manual' });
    assert.equal(replay.status, 400, 'a code is redeemed once');
    assert.match(await replay.text(), /Could not sign you in/);
    assert.equal(newSession(replay), false);
    const noFlow = await fetch(callback.url, { redirect: 'manual' });
    assert.equal(noFlow.status, 400, 'no flow cookie: refused');
    assert.equal(newSession(noFlow), false);
  });

  it('explains a cancelled sign-in and offers to try again, without a session', async () => {
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    const cancelled = await browser.submit(login, '/abort');
    assert.equal(cancelled.status, 400);
    assert.equal(new URL(cancelled.url).pathname, '/account/callback');
    assert.match(cancelled.body, /The sign-in was cancelled\./);
    assert.match(cancelled.body, /<a class="button" href="\/account">Sign in to your account<\/a>/);
    assert.equal(browser.jar.has('lk.account'), false);
  });

  it('signs out at once, ending the account session with its provider session, and says so', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const page = await signInToAccount(browser, user);
    const stolen = browser.jar.get('lk.account')!;
    const done = await post(browser, page, '/account/sign-out');
    assert.equal(done.status, 200);
    assert.ok(done.url.startsWith(`${server.url}/session/end/success`), `"You're signed out", got ${done.url}`);
    assert.doesNotMatch(done.body, /op\.logoutForm|Sign out of/, 'no second question');
    assert.match(done.body, /You are signed out/);
    assert.doesNotMatch(done.body, /\/login"/, 'not a bare sign-in form');
    assert.equal((await silentAtApp(browser)).searchParams.get('error'), 'login_required');
    const res = await fetch(`${server.url}/account`, { headers: { cookie: `lk.account=${stolen}` }, redirect: 'manual' });
    sentToSignIn(res);
  });

  it('ends the account session when its provider session ends elsewhere (logging out at another app)', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const { tokens } = await rp.signIn(browser, user);
    const logout = oidc.buildEndSessionUrl(rp.config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://localhost:9999/bye' });
    const done = await browser.follow(logout.toString());
    assert.ok(done.stoppedAt?.startsWith('http://localhost:9999/bye'));
    assert.ok(browser.jar.has('lk.account'), 'the browser still holds its account cookie');
    sentToSignIn(await browser.request('/account'));
  });

  it('every form refuses a foreign Origin and a missing or forged CSRF token, and changes nothing', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const other = new CookieClient(server.url);
    await signInToAccount(other, user);
    await rp.signIn(browser, user);
    const token = await store().codes.issue('email_change', user.id, 3600, { email: 'mallory@example.com', from: user.email });
    const mails = mailbox.messages.length;
    const sessionsPage = await browser.follow('/account/sessions');
    const otherSession = allFormFields(sessionsPage, '/account/sessions/sign-out')[0]!.session!;

    const forms: [string, string, Record<string, string>][] = [
      ['/account', '/account/profile', { name: 'Mallory' }],
      ['/account/email', '/account/email', { email: 'mallory@example.com' }],
      ['/account/password', '/account/password', { current: user.password, password: 'mallory chose this one', signOutOthers: 'yes' }],
      ['/account/verification', '/account/verification', { preference: 'always' }],
      ['/account/sessions', '/account/sessions/sign-out', { session: otherSession }],
      ['/account/sessions', '/account/sessions/sign-out-others', {}],
      ['/account/apps', '/account/apps/remove', { client: rp.client.clientId }],
      ['/account', '/account/sign-out', {}],
      [`/account/email/confirm?token=${token}`, '/account/email/confirm', {}],
    ];
    for (const [pagePath, action, fields] of forms) {
      const page = await browser.follow(pagePath);
      assert.equal(page.status, 200, pagePath);
      const hidden = formFields(page, action);
      const foreign = await browser.request(action, { form: { ...hidden, ...fields }, headers: { origin: 'https://evil.example' } });
      assert.equal(foreign.status, 403, `${action} from another origin`);
      assert.match(foreign.body, /another site/);
      const { csrf: _csrf, ...withoutToken } = hidden;
      const missing = await browser.request(action, { form: { ...withoutToken, ...fields } });
      assert.equal(missing.status, 403, `${action} without a CSRF token`);
      const forged = await browser.request(action, { form: { ...hidden, ...fields, csrf: 'A'.repeat(43) } });
      assert.equal(forged.status, 403, `${action} with a forged CSRF token`);
    }

    const after = (await store().users.findById(user.id))!;
    assert.equal(after.name, null);
    assert.equal(after.email, user.email);
    assert.equal(after.verificationPreference, 'risky');
    assert.ok(await server.server.services.hasher.verify(after.passwordHash, user.password), 'the password is unchanged');
    assert.equal((await store().sessions.listForUser(user.id)).length, 2, 'both sessions live');
    assert.equal((await browser.follow('/account')).status, 200, 'still signed in to the account page');
    assert.equal((await other.follow('/account')).status, 200, 'the other browser too');
    assert.ok((await silentAtApp(browser)).searchParams.get('code'), 'the app keeps its access');
    assert.ok(await store().codes.peek('email_change', token), 'the email-change link is unspent');
    assert.equal(mailbox.messages.length, mails, 'no mail was sent');
  });

  it('answers long or malformed input with a clear message and stores nothing', async () => {
    const user = await newUser();
    const stranger = await newUser();
    const strangerBrowser = new CookieClient(server.url);
    await signInToAccount(strangerBrowser, stranger);
    const strangerSession = (await store().sessions.listForUser(stranger.id))[0]!.uid;
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const mails = mailbox.messages.length;

    const cases: [string, string, Record<string, string>, number, RegExp][] = [
      ['/account', '/account/profile', { name: 'x'.repeat(201) }, 400, /That name is too long/],
      ['/account', '/account/profile', { name: 'Bad\u0007Name' }, 400, /cannot be used/],
      // A right-to-left override would show "Mallory\u202Egnp.exe" as "Mallory" + "exe.png" on every page and mail.
      ['/account', '/account/profile', { name: 'Mallory\u202Egnp.exe' }, 400, /cannot be used/],
      ['/account', '/account/profile', { name: 'Isolated\u2066name\u2069' }, 400, /cannot be used/],
      ['/account/email', '/account/email', { email: '' }, 400, /Enter the new email address/],
      ['/account/email', '/account/email', { email: 'not-an-email' }, 400, /Enter a valid email address/],
      ['/account/email', '/account/email', { email: `${'a'.repeat(400)}@example.com` }, 400, /too long/],
      ['/account/email', '/account/email', { email: user.email.toUpperCase() }, 400, /already your email address/],
      ['/account/password', '/account/password', { current: '', password: 'whatever long enough' }, 400, /Enter your current password/],
      ['/account/password', '/account/password', { current: user.password, password: 'short' }, 400, /at least 8 characters/],
      ['/account/password', '/account/password', { current: user.password, password: 'p'.repeat(300) }, 400, /at most 256 characters/],
      ['/account/password', '/account/password', { current: user.password, password: 'x'.repeat(2000) }, 400, /too long/],
      ['/account/verification', '/account/verification', { preference: 'sometimes' }, 400, /Choose one of the options/],
      ['/account/sessions', '/account/sessions/sign-out', { session: '../../etc' }, 400, /already ended/],
      ['/account/sessions', '/account/sessions/sign-out', { session: strangerSession }, 400, /already ended/],
      ['/account/apps', '/account/apps/remove', { client: rp.client.clientId }, 400, /no access to remove/],
      ['/account/apps', '/account/apps/remove', { client: '\u0000' }, 400, /NUL character/],
    ];
    for (const [pagePath, action, fields, status, message] of cases) {
      const page = await browser.follow(pagePath);
      const res = await browser.request(action, { form: { csrf: formFields(page, '/account/sign-out').csrf!, ...fields } });
      assert.equal(res.status, status, `${action} ${JSON.stringify(fields).slice(0, 60)}`);
      assert.match(res.body, message);
      assert.match(res.body, /role="alert"/);
      assert.doesNotMatch(res.body, /at .*\.(ts|js):\d+/, 'no stack trace');
    }
    const page = await browser.follow('/account');
    const huge = await browser.request('/account/profile', { form: { csrf: formFields(page, '/account/profile').csrf!, name: 'x'.repeat(100_000) } });
    assert.equal(huge.status, 413);

    const dead = await browser.follow('/account/email/confirm?token=nope');
    assert.equal(dead.status, 400);
    assert.match(dead.body, /expired or was already used/);

    const after = (await store().users.findById(user.id))!;
    assert.equal(after.name, null);
    assert.equal(after.email, user.email);
    assert.equal(after.verificationPreference, 'risky');
    assert.ok(await server.server.services.hasher.verify(after.passwordHash, user.password));
    assert.equal((await strangerBrowser.follow('/account')).status, 200, 'another user\'s session cannot be signed out');
    assert.equal(mailbox.messages.length, mails, 'no mail was sent');
  });

  it('changes the name without a recent sign-in and records it', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const page = await signInToAccount(browser, user);
    const saved = await post(browser, page, '/account/profile', { name: '  Ada Lovelace  ' });
    assert.equal(saved.status, 200);
    assert.equal(saved.url, `${server.url}/account?done=name`);
    assert.match(saved.body, /Your name was saved\./);
    assert.match(saved.body, /value="Ada Lovelace"/);
    assert.equal((await store().users.findById(user.id))!.name, 'Ada Lovelace');
    const events = await store().events.forUser(user.id);
    assert.ok(events.some((e) => e.type === 'profile.updated'));
  });

  it('changes the email only through the link sent to the new address, once, and never to an address taken meanwhile', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const newEmail = `renamed-${user.id.slice(0, 8)}@example.com`;
    const since = mailbox.messages.length;
    const form = await browser.follow('/account/email');
    const sent = await post(browser, form, '/account/email', { email: newEmail });
    assert.equal(sent.status, 200);
    assert.match(sent.body, new RegExp(`We sent a link to ${newEmail}`));
    const link = mailbox.link(await mailbox.next(newEmail, { since }));
    const notice = await mailbox.next(user.email, { since });
    assert.match(notice.subject, /Someone asked to change your Latchkey email address/);
    assert.match(notice.text, new RegExp(newEmail));
    assert.equal((await store().users.findById(user.id))!.email, user.email, 'nothing changes before the link is confirmed');

    const confirm = await browser.follow(link);
    assert.equal(confirm.status, 200);
    assert.match(confirm.body, /Confirm new email address/);
    assert.equal((await store().users.findById(user.id))!.email, user.email, 'opening the link changes nothing (mail scanners)');
    const done = await post(browser, confirm, '/account/email/confirm');
    assert.equal(done.status, 200);
    assert.match(done.body, /Your email address is now/);
    const changed = (await store().users.findById(user.id))!;
    assert.equal(changed.email, newEmail);
    assert.ok(changed.emailVerifiedAt);
    const changedNotice = await mailbox.next(user.email, { since: since + 2 });
    assert.match(changedNotice.subject, /email address was changed/);
    const again = await post(browser, confirm, '/account/email/confirm');
    assert.equal(again.status, 400, 'the link works once');
    assert.match(again.body, /expired or was already used/);

    // A link to an address another account took in the meantime: a clear message, nothing spent or changed.
    const wanted = `wanted-${user.id.slice(0, 8)}@example.com`;
    const second = await post(browser, await browser.follow('/account/email'), '/account/email', { email: wanted });
    assert.equal(second.status, 200);
    const link2 = mailbox.link(await mailbox.next(wanted, { since }));
    await server.addUser({ email: wanted, password: 'someone else took it' });
    const page2 = await browser.follow(link2);
    const taken = await post(browser, page2, '/account/email/confirm');
    assert.equal(taken.status, 409);
    assert.match(taken.body, /Another account already uses this email address/);
    assert.equal((await store().users.findById(user.id))!.email, newEmail);
    assert.ok(await store().codes.peek('email_change', new URL(link2).searchParams.get('token')!), 'the link was not spent');
  });

  it('counts wrong current passwords on the account\'s shared failure counter and throttles like sign-in', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const page = await browser.follow('/account/password');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await browser.request('/account/password', { form: { ...formFields(page, '/account/password'), current: `wrong ${i}`, password: 'a new long password' } });
      statuses.push(res.status);
      if (res.status === 400) assert.match(res.body, /Your current password is not right/);
      else assert.match(res.body, /Too many failed attempts/);
    }
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429]);
    const events = await store().events.forUser(user.id);
    assert.equal(events.filter((e) => e.type === 'password.change_failed').length, 5);
    assert.ok(await server.server.services.hasher.verify((await store().users.findById(user.id))!.passwordHash, user.password), 'unchanged');
  });

  it('changes the password with the current one, mails the user, kills reset links and can sign out every other session', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const other = new CookieClient(server.url);
    await signInToAccount(other, user);
    await rp.signIn(other, user);
    const reset = await store().codes.issue('password_reset', user.id, 600, { email: user.email });
    const since = mailbox.messages.length;
    const page = await browser.follow('/account/password');
    const changed = await post(browser, page, '/account/password', { current: user.password, password: 'a brand new passphrase', signOutOthers: 'yes' });
    assert.equal(changed.status, 200);
    assert.equal(changed.url, `${server.url}/account/security?done=password`);
    assert.match(changed.body, /Your password was changed\./);
    const mail = await mailbox.next(user.email, { since });
    assert.match(mail.subject, /password was changed/);
    const saved = (await store().users.findById(user.id))!;
    assert.ok(await server.server.services.hasher.verify(saved.passwordHash, 'a brand new passphrase'));
    assert.equal(await server.server.services.hasher.verify(saved.passwordHash, user.password), false);
    assert.equal(await store().codes.peek('password_reset', reset), undefined, 'older reset links die');
    sentToSignIn(await other.request('/account'));
    assert.equal((await silentAtApp(other)).searchParams.get('error'), 'login_required');
    assert.equal((await browser.follow('/account')).status, 200, 'this browser stays signed in');
    const events = await store().events.forUser(user.id);
    const event = events.find((e) => e.type === 'password.changed');
    assert.deepEqual(event?.details, { signedOutOthers: true, sessionsEnded: 1, apps: [rp.client.clientId] });
  });

  it('lists sessions, marks this one, signs out another one or all others', async () => {
    const user = await newUser();
    const browsers = [new CookieClient(server.url), new CookieClient(server.url), new CookieClient(server.url)];
    for (const b of browsers) await signInToAccount(b, user);
    const [mine, second, third] = browsers as [CookieClient, CookieClient, CookieClient];
    const list = await mine.follow('/account/sessions');
    assert.equal((list.body.match(/<li( class="current")?>\s*<strong>/g) ?? []).length, 3);
    assert.equal((list.body.match(/This browser/g) ?? []).length, 1);
    assert.match(list.body, /Near 127\.0\.0\.x \(location unknown\)/);
    assert.match(list.body, /Last active/);
    const others = allFormFields(list, '/account/sessions/sign-out');
    assert.equal(others.length, 2, 'this browser has no sign-out button in the list');
    const secondUid = (await store().sessions.listForUser(user.id)).find((s) => others.some((o) => o.session === s.uid))!.uid;
    const done = await post(mine, list, '/account/sessions/sign-out', { session: secondUid });
    assert.equal(done.url, `${server.url}/account/sessions?done=session`);
    assert.match(done.body, /That session was signed out\./);
    const alive = await Promise.all([second, third].map(async (b) => (await b.request('/account')).status));
    assert.equal(alive.filter((s) => s === 200).length, 1, 'exactly the chosen session ended');
    const all = await post(mine, done, '/account/sessions/sign-out-others');
    assert.match(all.body, /All your other sessions were signed out\./);
    for (const b of [second, third]) sentToSignIn(await b.request('/account'));
    assert.equal((await mine.follow('/account')).status, 200);
    assert.equal((await store().sessions.listForUser(user.id)).length, 1);
  });

  it('lists the apps the user allowed and Remove access revokes the grant: its refresh token stops working', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const { tokens } = await rp.signIn(browser, user, { scope: 'openid email offline_access' });
    assert.ok(tokens.refresh_token);
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token);
    assert.ok(refreshed.access_token, 'the refresh token works before');
    const apps = await browser.follow('/account/apps');
    assert.equal(apps.status, 200, 'signed in to the account page silently (the provider session exists)');
    assert.match(apps.body, /<strong>Notes<\/strong>/);
    assert.match(apps.body, /See your email address/);
    assert.match(apps.body, /Stay connected when you are not using it/);
    assert.doesNotMatch(apps.body, /Latchkey account/, 'the account page itself is not listed');
    const removed = await post(browser, apps, '/account/apps/remove', { client: rp.client.clientId });
    assert.equal(removed.url, `${server.url}/account/apps?done=app`);
    assert.match(removed.body, /No apps have access to your account\./);
    await assert.rejects(oidc.refreshTokenGrant(rp.config, refreshed.refresh_token ?? tokens.refresh_token), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    const { url } = await rp.authorization();
    const again = await browser.follow(url);
    assert.match(again.body, /\/confirm"/, 'the app must ask for consent again');
    const events = await store().events.forUser(user.id);
    assert.ok(events.some((e) => e.type === 'app.access_removed' && e.details.client === rp.client.clientId));
    await drive(browser, url); // consent again works
  });

  it('shows the security activity of the last 90 days, newest first, in words', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    await browser.submit(login, '/login', { email: user.email, password: 'wrong password here' });
    const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.match(page.body, /Signed in as/);
    await server.db.database.knex('security_events').insert({ user_id: user.id, type: 'password.changed', ip: '192.0.2.1', details: '{}', created_at: new Date(Date.now() - 91 * 86400_000) });
    const activity = await browser.follow('/account/activity');
    assert.equal(activity.status, 200);
    const items = [...activity.body.matchAll(/<li[^>]*>\s*<strong>([^<]*)<\/strong>/g)].map((m) => m[1]);
    assert.deepEqual(items, ['Signed in', 'Failed sign-in: wrong password'], 'newest first; older than 90 days left out');
    assert.match(activity.body, /from 127\.0\.0\.1/);
  });
});
