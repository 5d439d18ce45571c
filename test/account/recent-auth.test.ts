import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { CookieClient } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { formFields, post, signInToAccount, sleep } from './helpers.ts';
import { enrolQuestion, enrolTotp } from '../helpers/two-step.ts';

/**
 * Sensitive changes need a sign-in at most account.recentAuthSeconds old. The server here allows 1 second;
 * auth_time is in whole seconds (as oidc-provider's max_age check counts), so waiting 2.1 s makes any
 * sign-in "older".
 */
describe('recent sign-in for sensitive changes', () => {
  let server: TestServer;
  const OLD = 2100;

  before(async () => {
    server = await startTestServer({ config: { account: { recentAuthSeconds: 1 } } });
  });
  after(() => server.stop());

  const newUser = () => server.newUser('recent');

  it('ships with 600 seconds (10 minutes)', () => {
    assert.equal(loadConfig({ env: {} }).account.recentAuthSeconds, 600);
    assert.throws(() => loadConfig({ env: {}, overrides: { account: { recentAuthSeconds: 0 } } }), /account\.recentAuthSeconds/);
  });

  it('opens the email, password and verification pages straight after a sign-in', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    for (const path of ['/account/email', '/account/password', '/account/verification']) {
      const res = await browser.request(path);
      assert.equal(res.status, 200, path);
    }
  });

  it('sends an older sign-in through /auth with max_age and acr_values, back to the same page, with a new account cookie', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const before = browser.jar.get('lk.account')!;
    await sleep(OLD);

    assert.equal((await browser.request('/account/sessions')).status, 200, 'ordinary pages do not ask again');
    const res = await browser.request('/account/password');
    assert.equal(res.status, 303);
    const auth = new URL(res.headers.get('location')!);
    assert.equal(auth.pathname, '/auth');
    assert.equal(auth.searchParams.get('client_id'), 'latchkey-account');
    assert.equal(auth.searchParams.get('max_age'), '1');
    assert.equal(auth.searchParams.get('acr_values'), 'urn:latchkey:acr:1fa');

    const login = await browser.follow(auth.toString());
    assert.equal(login.status, 200);
    assert.match(login.body, /\/login"/, 'the provider asks for the password again');
    const back = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(back.status, 200);
    assert.equal(back.url, `${server.url}/account/password`, 'back at the page that asked');
    assert.match(back.body, /<h1>Change password<\/h1>/);

    const rotated = browser.jar.get('lk.account')!;
    assert.notEqual(rotated, before, 'a new account session at each sign-in');
    const old = await fetch(`${server.url}/account`, { headers: { cookie: `lk.account=${before}` }, redirect: 'manual' });
    assert.equal(old.status, 303, 'the old cookie no longer works');
    assert.equal(new URL(old.headers.get('location')!).pathname, '/auth');
  });

  it('a sign-in that is too old still asks, on a page that speaks of the account, not of an app', async () => {
    const user = await newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    await sleep(OLD);
    const login = await browser.follow('/account/password');
    assert.match(login.body, /\/login"/);
    assert.match(login.body, /Confirm it&#39;s you to change your security settings\./);
    assert.match(login.body, /Cancel and return to your account/);
    assert.doesNotMatch(login.body, /return to the app/);
    // An app's own sign-in keeps its words.
    const first = await new CookieClient(server.url).follow('/account');
    assert.doesNotMatch(first.body, /change your security settings/);
  });

  it('changes nothing when a sensitive form arrives after the sign-in got old, and works after signing in again', async () => {
    const user = await newUser();
    // "Every sign-in" needs a method that gives mfa; this user has none, so the change tried is back to "risky".
    await server.server.services.store.users.setVerificationPreference(user.id, 'always');
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    const page = await browser.follow('/account/verification');
    assert.equal(page.status, 200);
    const profile = await browser.follow('/account');
    await sleep(OLD);

    const late = await browser.request('/account/verification', { form: { ...formFields(page, '/account/verification'), preference: 'risky' } });
    assert.equal(late.status, 303);
    const auth = new URL(late.headers.get('location')!);
    assert.equal(auth.searchParams.get('max_age'), '1');
    assert.equal((await server.server.services.store.users.findById(user.id))!.verificationPreference, 'always', 'nothing changed');

    // The name is not sensitive: it saves without signing in again.
    const named = await post(browser, profile, '/account/profile', { name: 'Grace' });
    assert.match(named.body, /Your name was saved\./);

    const login = await browser.follow(auth.toString());
    const back = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(back.url, `${server.url}/account/verification`);
    const saved = await post(browser, back, '/account/verification', { preference: 'risky' });
    assert.equal(saved.url, `${server.url}/account/security?done=verification`);
    assert.equal((await server.server.services.store.users.findById(user.id))!.verificationPreference, 'risky');
  });
});

describe('a method just added by proving it counts as a recent sign-in', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('after adding an authenticator app, the next change needs no new sign-in: the code typed back was the proof', async () => {
    const user = await server.newUser('proved');
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    await enrolQuestion(browser);
    await enrolTotp(browser);
    // Before the app, the highest level this user could reach was 1fa; now it is mfa, and the session proved it.
    const res = await browser.request('/account/password');
    assert.equal(res.status, 200, `the password page at once, got ${res.status} to ${res.headers.get('location')}`);
    const session = await server.server.services.database.knex('account_sessions').where({ user_id: user.id }).first();
    assert.equal(session.acr, 'urn:latchkey:acr:mfa');
    assert.ok(Date.now() - new Date(session.auth_time).getTime() < 60_000, 'auth_time is now');
  });

});
