import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { APP, chromiumSuite } from '../helpers/chromium.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import type { TestServer } from '../helpers/server.ts';


describe('the account page in Chromium', () => {
  let mailbox: MailBox;
  before(async () => {
    mailbox = await startMailBox();
  });
  const suite = chromiumSuite('chromium', () => ({ mail: { smtpUrl: mailbox.url } }));
  after(() => mailbox.stop());
  let server: TestServer;
  let rp: RelyingParty;
  before(() => {
    ({ server, rp } = suite);
  });
  const { violations } = suite;
  const newUser = () => suite.newUser();
  const openBrowser = () => suite.openBrowser();

  const path = (page: Page) => new URL(page.url()).pathname;

  async function signIn(page: Page, user: { email: string; password: string }) {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** Opens `to` and signs in on the way; ends on `to`. */
  async function signInToAccount(page: Page, user: { email: string; password: string }, to = '/account') {
    await page.goto(`${server.url}${to}`);
    await signIn(page, user);
    await page.waitForURL((u) => u.pathname === to);
    await page.getByText(`Signed in as ${user.email}`).waitFor();
  }

  it('changes the name', async () => {
    const user = await newUser();
    const { page } = await openBrowser();
    await signInToAccount(page, user);
    await page.getByLabel('Name').fill('Katherine Johnson');
    await page.getByRole('button', { name: 'Save name' }).click();
    await page.getByRole('status').filter({ hasText: 'Your name was saved.' }).waitFor();
    assert.equal(await page.getByLabel('Name').inputValue(), 'Katherine Johnson');
    assert.equal((await server.server.services.store.users.findById(user.id))!.name, 'Katherine Johnson');
    assert.deepEqual(violations, []);
  });

  it('changes the email through a link to the new address, with a notice to the old one; the new address signs in', async () => {
    const user = await newUser();
    const newEmail = `moved-${user.id.slice(0, 8)}@example.com`;
    const since = mailbox.messages.length;
    const { page } = await openBrowser();
    await signInToAccount(page, user);
    await page.getByRole('link', { name: 'Change email address' }).click();
    await page.getByLabel('New email address').fill(newEmail);
    await page.getByRole('button', { name: 'Send confirmation link' }).click();
    await page.getByRole('status').filter({ hasText: `We sent a link to ${newEmail}` }).waitFor();

    const confirmation = await mailbox.next(newEmail, { since });
    assert.match(confirmation.subject, /Confirm your new email address/);
    const notice = await mailbox.next(user.email, { since });
    assert.match(notice.subject, /Someone asked to change your Latchkey email address/);
    assert.match(notice.text, new RegExp(newEmail));

    await page.goto(mailbox.link(confirmation));
    await page.getByRole('button', { name: 'Confirm new email address' }).click();
    await page.getByRole('heading', { name: 'Email address changed' }).waitFor();
    const changed = await mailbox.next(user.email, { since: since + 2 });
    assert.match(changed.subject, /Your Latchkey email address was changed/);

    const { page: fresh } = await openBrowser();
    await fresh.goto(`${server.url}/account`);
    await signIn(fresh, { email: user.email, password: user.password });
    await fresh.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    await signIn(fresh, { email: newEmail, password: user.password });
    await fresh.waitForURL((u) => u.pathname === '/account');
    await fresh.getByText(`Signed in as ${newEmail}`).waitFor();
    assert.deepEqual(violations, []);
  });

  it('changes the password and signs out the other browser: it must sign in again, and prompt=none at an app gives login_required', async () => {
    const user = await newUser();
    const newPassword = 'a completely new passphrase';
    const mine = await openBrowser();
    const other = await openBrowser();
    await signInToAccount(mine.page, user);
    await signInToAccount(other.page, user);

    await mine.page.getByRole('link', { name: 'Password & security' }).click();
    await mine.page.getByRole('link', { name: 'Change password' }).click();
    await mine.page.getByLabel('Current password').fill(user.password);
    await mine.page.getByLabel('New password').fill(newPassword);
    await mine.page.getByLabel('Sign out my other sessions').check();
    await mine.page.getByRole('button', { name: 'Change password' }).click();
    await mine.page.getByRole('status').filter({ hasText: 'Your password was changed.' }).waitFor();
    assert.match((await mailbox.next(user.email)).subject, /Your Latchkey password was changed/);

    await other.page.goto(`${server.url}/account`);
    await other.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // prompt=none with this browser's cookies (Playwright does not route a navigation's redirect, so ask directly).
    const { url } = await rp.authorization({ prompt: 'none' });
    const silent = await other.page.context().request.get(url, { maxRedirects: 0 });
    assert.equal(silent.status(), 303);
    const answer = new URL(silent.headers().location!);
    assert.equal(`${answer.origin}${answer.pathname}`, `${APP}/cb`);
    assert.equal(answer.searchParams.get('error'), 'login_required');

    await other.page.goto(`${server.url}/account`);
    await signIn(other.page, user);
    await other.page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    await signIn(other.page, { email: user.email, password: newPassword });
    await other.page.waitForURL((u) => u.pathname === '/account');

    await mine.page.goto(`${server.url}/account`);
    assert.equal(path(mine.page), '/account', 'the browser that changed it stays signed in');
    assert.deepEqual(violations, []);
  });

  it('lists the sessions of both browsers, marks this one, and signs the other out from here', async () => {
    const user = await newUser();
    const mine = await openBrowser();
    const other = await openBrowser();
    await signInToAccount(mine.page, user);
    await signInToAccount(other.page, user);

    await mine.page.getByRole('link', { name: 'Sessions' }).click();
    const items = mine.page.locator('#sessions > li');
    assert.equal(await items.count(), 2);
    assert.equal(await items.filter({ hasText: 'Chrome on Linux' }).count(), 2);
    assert.equal(await items.filter({ hasText: 'Near 127.0.0.x (location unknown)' }).count(), 2);
    const current = items.filter({ hasText: 'This browser' });
    assert.equal(await current.count(), 1);
    assert.equal(await current.getByRole('button').count(), 0, 'this browser signs out with "Sign out", not from the list');
    await items.filter({ hasNotText: 'This browser' }).getByRole('button', { name: 'Sign out this session' }).click();
    await mine.page.getByRole('status').filter({ hasText: 'That session was signed out.' }).waitFor();
    assert.equal(await mine.page.locator('#sessions > li').count(), 1);

    await other.page.goto(`${server.url}/account/sessions`);
    await other.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.deepEqual(violations, []);
  });

  it('lists an app the user allowed, and Remove access makes its refresh token fail', async () => {
    const user = await newUser();
    const { page, callbacks } = await openBrowser();
    const { url, checks } = await rp.authorization({ scope: 'openid profile offline_access' });
    await page.goto(url);
    await signIn(page, user);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${APP}/**`);
    const tokens = await rp.callback(callbacks.at(-1)!, checks);
    assert.ok(tokens.refresh_token);

    await page.goto(`${server.url}/account/apps`);
    const app = page.locator('#apps > li').filter({ hasText: 'Notes' });
    await app.waitFor();
    await app.getByText('See your name and profile').waitFor();
    await app.getByText('Stay connected when you are not using it').waitFor();
    await app.getByRole('button', { name: 'Remove access' }).click();
    await page.getByRole('status').filter({ hasText: "The app's access was removed." }).waitFor();
    await page.getByText('No apps have access to your account.').waitFor();
    await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    assert.deepEqual(violations, []);
  });

  it('shows failed and successful sign-ins in the security activity', async () => {
    const user = await newUser();
    const { page } = await openBrowser();
    await page.goto(`${server.url}/account`);
    await signIn(page, { email: user.email, password: 'not my password' });
    await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    await signIn(page, user);
    await page.waitForURL((u) => u.pathname === '/account');
    await page.getByRole('link', { name: 'Security activity' }).click();
    const items = page.locator('#activity > li');
    assert.equal(await items.count(), 2);
    assert.match(await items.nth(0).innerText(), /Signed in[\s\S]*Latchkey account[\s\S]*from 127\.0\.0\.1, Chrome on Linux/);
    assert.match(await items.nth(1).innerText(), /Failed sign-in: wrong password[\s\S]*from 127\.0\.0\.1, Chrome on Linux/);
    assert.deepEqual(violations, []);
  });

  it('saves the verification preference after a recent sign-in and mails the user; "every sign-in" needs an app or a phone first', async () => {
    const user = await newUser();
    const { page } = await openBrowser();
    await signInToAccount(page, user, '/account/security');
    await page.getByRole('heading', { name: 'Two-step verification' }).waitFor();
    await page.getByRole('link', { name: 'Set up Security question' }).waitFor();
    // The choice is at the top of "Password & security".
    const choice = () => page.locator('#verification-preference').getByRole('group', { name: 'When to ask for verification' });
    assert.equal(await choice().getByLabel('Verify only when a sign-in looks risky').isChecked(), true, 'the default');
    const since = mailbox.messages.length;
    await choice().getByLabel('Verify at every sign-in').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').filter({ hasText: 'To verify at every sign-in, first add an authenticator app or a phone.' }).waitFor();
    assert.equal(await choice().getByLabel('Verify at every sign-in').isChecked(), true, 'the choice is shown back next to the reason');
    assert.equal((await server.server.services.store.users.findById(user.id))!.verificationPreference, 'risky', 'not saved');

    // A user who chose "every sign-in" (and has no app now) can always go back to the default, here or on the choice's own page.
    await server.server.services.store.users.setVerificationPreference(user.id, 'always');
    await page.goto(`${server.url}/account/verification`);
    await page.getByLabel('Verify only when a sign-in looks risky').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Your verification setting was saved.' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/account/security');
    assert.equal(await choice().getByLabel('Verify only when a sign-in looks risky').isChecked(), true);
    assert.equal((await server.server.services.store.users.findById(user.id))!.verificationPreference, 'risky');
    const mail = await mailbox.next(user.email, { since });
    assert.match(mail.subject, /verification setting was changed/);
    assert.match(mail.text, /Verify only when a sign-in looks risky/);
    assert.deepEqual(violations, []);
  });
});
