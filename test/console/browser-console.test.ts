/**
 * The admin console driven by real Chromium: an administrator signs in with a second factor (an
 * authenticator app); invites someone, who gets the mail and chooses a password; disables a user, whose
 * other browser is signed out of the account page and whose app's refresh token stops working; and the
 * help desk resets a lost second factor, after which the user follows the mailed link, enters the password,
 * sets up a new authenticator app, gets new recovery codes and signs in with them. On a phone (375 px) no
 * console page scrolls sideways, and no page breaks the CSP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { CookieClient } from '../helpers/browser.ts';
import { chromiumSuite } from '../helpers/chromium.ts';
import { rejectsWith } from '../helpers/oauth.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { addQuestion, awaitFreshStep, base32Decode, nowSeconds, totpCode } from '../helpers/two-step.ts';
import { auditHead, consoleAuditRows, consoleUser, signInConsolePage } from './helpers.ts';

const MFA = 'urn:latchkey:acr:mfa';

describe('the admin console in Chromium', () => {
  let mailbox: MailBox;
  before(async () => {
    mailbox = await startMailBox();
  });
  const suite = chromiumSuite('console-chromium', () => ({ mail: { smtpUrl: mailbox.url } }));
  after(() => mailbox.stop());
  const server = () => suite.server;
  const store = () => suite.server.server.services.store;

  /** Opens the account page in `page` and signs in with the password (ends signed in there). */
  async function signInToAccount(page: Page, user: { email: string; password: string }) {
    await page.goto(`${server().url}/account`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText(`Signed in as ${user.email}`).waitFor();
  }

  /** The page does not scroll sideways (its content fits the viewport's width). */
  async function fitsWidth(page: Page) {
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `${page.url()}: ${scroll} px wide in ${client} px`);
  }

  it('signs an administrator in with an authenticator app; every page fits a phone', async () => {
    const admin = await consoleUser(server(), ['admin'], 'chromium-admin');
    const target = await consoleUser(server(), [], 'chromium-target');
    const seq = await auditHead(server());
    const page = await suite.openPage({ viewport: { width: 375, height: 740 } });
    await signInConsolePage(page, server(), admin);
    await page.getByText(`Signed in as ${admin.email} (Administrator)`).waitFor();
    const signIn = (await consoleAuditRows(server(), seq)).find((r) => r.action === 'console.sign_in');
    assert.deepEqual([signIn?.result, signIn?.actor_id, signIn?.actor_acr], ['ok', admin.id, MFA]);
    for (const path of ['/admin', '/admin/users', `/admin/users/${target.id}`, '/admin/users/invite', `/admin/users/${target.id}/two-step-reset`,
      `/admin/users/${target.id}/roles`, `/admin/users/${target.id}/delete`]) {
      await page.goto(`${server().url}${path}`);
      await page.locator('#signed-in-as').waitFor();
      await fitsWidth(page);
    }
    assert.deepEqual(suite.violations, []);
  });

  it('invites a user, who gets the mail, chooses a password and signs in', async () => {
    const admin = await consoleUser(server(), ['admin'], 'chromium-inviter');
    const page = await suite.openPage();
    await signInConsolePage(page, server(), admin, '/admin/users');
    await page.getByRole('link', { name: 'Invite a user' }).click();
    await page.getByLabel('Email').fill('chromium-invitee@example.com');
    await page.getByLabel('Name').fill('Mary Jackson');
    const since = mailbox.messages.length;
    await page.getByRole('button', { name: 'Send the invitation' }).click();
    await page.getByRole('status').filter({ hasText: 'An invitation went to chromium-invitee@example.com.' }).waitFor();
    const link = mailbox.link(await mailbox.next('chromium-invitee@example.com', { since }));

    const invitee = await suite.openPage();
    await invitee.goto(link);
    await invitee.getByRole('heading', { name: 'Choose your password' }).waitFor();
    await invitee.getByLabel('New password').fill('a brand new invited password');
    await invitee.getByRole('button', { name: 'Set password' }).click();
    await invitee.getByRole('heading', { name: 'Your account is ready' }).waitFor();
    await signInToAccount(invitee, { email: 'chromium-invitee@example.com', password: 'a brand new invited password' });
    const user = await store().users.findByEmail('chromium-invitee@example.com');
    assert.ok(user?.emailVerifiedAt, 'the address is confirmed by the invitation');
    assert.equal(user.name, 'Mary Jackson');
    assert.deepEqual(suite.violations, []);
  });

  it('disables a user: their other browser is signed out of the account page, their app\'s refresh token fails', async () => {
    const admin = await consoleUser(server(), ['admin'], 'chromium-disabler');
    const user = await suite.newUser();
    const theirs = await suite.openPage();
    await signInToAccount(theirs, user);
    const { tokens } = await suite.rp.signIn(new CookieClient(server().url), user, { scope: 'openid email offline_access' });
    assert.ok(tokens.refresh_token);

    const page = await suite.openPage();
    await signInConsolePage(page, server(), admin, `/admin/users/${user.id}`);
    const seq = await auditHead(server());
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('status').filter({ hasText: `${user.email} is disabled.` }).waitFor();
    assert.equal(await page.locator('#status').textContent(), 'Disabled');
    const row = (await consoleAuditRows(server(), seq)).find((r) => r.action === 'users.disable');
    assert.deepEqual([row?.result, row?.actor_id, row?.actor_acr, row?.target_id], ['ok', admin.id, MFA, user.id]);

    await theirs.goto(`${server().url}/account`);
    await theirs.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.notEqual(new URL(theirs.url()).pathname, '/account', 'signed out of the account page');
    await rejectsWith(oidc.refreshTokenGrant(suite.rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token is revoked');
    assert.deepEqual(suite.violations, []);
  });

  it('resets a lost second factor as the help desk; the user follows the link, sets up a new app, gets new codes and signs in with it', async () => {
    const helpdesk = await consoleUser(server(), ['helpdesk'], 'chromium-desk');
    const user = await consoleUser(server(), [], 'chromium-lost');
    // An authenticator app is added after a security question (its `needs`): the reset keeps the question.
    await addQuestion(store(), (s) => server().server.services.hasher.hash(s), user.id);
    const page = await suite.openPage();
    await signInConsolePage(page, server(), helpdesk, `/admin/users/${user.id}`);
    await page.getByRole('link', { name: 'Reset two-step verification' }).click();
    await page.getByLabel('How you re-proved who the caller is').fill('Video call with passport');
    await page.getByLabel('Ticket reference or note').fill('HD-4242');
    const since = mailbox.messages.length;
    const seq = await auditHead(server());
    await page.getByRole('button', { name: 'Reset two-step verification' }).click();
    await page.getByRole('status').filter({ hasText: 'was reset: 1 method removed' }).waitFor();
    const row = (await consoleAuditRows(server(), seq)).find((r) => r.action === 'users.reset_two_step');
    assert.deepEqual([row?.result, row?.actor_id, row?.actor_acr], ['ok', helpdesk.id, MFA]);
    assert.deepEqual((await store().authenticators.listForUser(user.id)).map((a) => a.kind), ['security-question'], 'the app is gone, the question stays');
    const link = mailbox.link(await mailbox.next(user.email, { since }));

    const theirs = await suite.openPage();
    await theirs.goto(link);
    await theirs.getByRole('heading', { name: 'Set up two-step verification again' }).waitFor();
    await theirs.getByLabel('Password', { exact: true }).fill(user.password);
    await theirs.getByRole('button', { name: 'Continue' }).click();
    await theirs.getByRole('link', { name: 'Add an authenticator app' }).click();
    const seed = (await theirs.locator('#totp-secret').textContent())!.replace(/\s/g, '');
    const key = base32Decode(seed);
    await awaitFreshStep();
    // The previous step's code at enrolment, so the sign-in below can use the current one.
    await theirs.getByLabel('Code from the app').fill(totpCode(key, nowSeconds() - 30));
    await theirs.getByRole('button', { name: 'Turn on' }).click();
    await theirs.getByText('Here are your new recovery codes').waitFor();
    assert.equal(await theirs.locator('ol.recovery-codes li').count(), 10);
    assert.deepEqual((await store().authenticators.listForUser(user.id)).map((a) => a.kind).sort(), ['recovery-code', 'security-question', 'totp']);

    await theirs.goto(`${server().url}/account`);
    await theirs.getByLabel('Email').fill(user.email);
    await theirs.getByLabel('Password', { exact: true }).fill(user.password);
    await theirs.getByRole('button', { name: 'Sign in' }).click();
    await theirs.locator('input[name="code"]').fill(totpCode(key, nowSeconds()));
    await theirs.locator('form[action$="/verify"] button[type="submit"]').first().click();
    await theirs.getByText(`Signed in as ${user.email}`).waitFor();
    assert.deepEqual(suite.violations, []);
  });
});
