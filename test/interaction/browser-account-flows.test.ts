import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, openAppBrowser } from '../helpers/chromium.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('sign-up, email verification and password reset in Chromium', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let browser: Browser;
  let rp: RelyingParty;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Browser App', redirectUris: ['http://localhost:9999/cb'] }));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server.stop();
    await mailbox.stop();
  });

  /** A page in a fresh context whose app redirect URI is answered by the test; CSP violations and errors are kept. */
  async function open(): Promise<{ context: BrowserContext; page: Page; violations: string[]; callback: () => string | undefined }> {
    const { context, page, violations, callbacks } = await openAppBrowser(browser, 'http://localhost:9999');
    return { context, page, violations, callback: () => callbacks.at(-1) };
  }

  /** Signs in on the sign-in page shown, consents, and redeems the code the app receives. */
  async function signInAndConsent(page: Page, email: string, password: string, checks: oidc.AuthorizationCodeGrantChecks, callback: () => string | undefined) {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL('http://localhost:9999/**');
    return rp.callback(callback()!, checks);
  }

  it('creates an account, confirms the address from the mail, then signs in to the app', async () => {
    const { context, page, violations, callback } = await open();
    const email = 'chris@example.com';
    const password = 'chris likes long passphrases';
    const { url, checks } = await rp.authorization();
    await page.goto(url);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();

    await page.getByLabel('Name').fill('Chris');
    await page.getByLabel('Email', { exact: true }).fill(email);
    const field = page.getByLabel('Password', { exact: true });
    await field.fill('password123');
    // "Show password" appears because the script ran, and only switches the field's type.
    const show = page.getByLabel('Show password');
    await show.check();
    assert.equal(await field.getAttribute('type'), 'text');
    await show.uncheck();
    assert.equal(await field.getAttribute('type'), 'password');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#password-error').filter({ hasText: 'too common' }).waitFor();
    assert.equal(await field.getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('Email', { exact: true }).inputValue(), email, 'the email is kept');

    await field.fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();

    const link = mailbox.link(await mailbox.next(email));
    await page.goto(link);
    await page.getByRole('heading', { name: 'Confirm your email address' }).waitFor();
    await page.getByRole('button', { name: 'Confirm email address' }).click();
    await page.getByRole('heading', { name: 'Email confirmed' }).waitFor();
    await page.getByRole('link', { name: 'Continue signing in' }).click();

    const tokens = await signInAndConsent(page, email, password, checks, callback);
    const claims = tokens.claims()!;
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub);
    assert.equal(info.email, email);
    assert.equal(info.email_verified, true);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa');

    // Opening the link again: a clear page, not an error.
    await page.goto(link);
    await page.getByRole('heading', { name: 'This link no longer works' }).waitFor();
    assert.deepEqual(violations, [], 'no CSP violations or page errors');
    await context.close();
  });

  it('resets a forgotten password from the sign-in page, then handles a reused and an expired link clearly', async () => {
    const dora = { email: 'dora@example.com', password: 'dora cannot remember' };
    const fresh = 'dora wrote this one down';
    const user = await server.addUser(dora);
    const { context, page, violations, callback } = await open();
    const { url, checks } = await rp.authorization();
    await page.goto(url);
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
    await page.getByLabel('Email').fill(dora.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    await page.getByText('If an account exists for dora@example.com').waitFor();

    const mail = await mailbox.next(dora.email);
    const link = mailbox.link(mail);
    await page.goto(link);
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await page.getByLabel('New password').fill(fresh);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed — sign in with your new password').waitFor();
    await page.getByRole('link', { name: 'Sign in' }).click();

    const tokens = await signInAndConsent(page, dora.email, fresh, checks, callback);
    assert.equal(tokens.claims()!.sub, user.id);

    await page.goto(link);
    await page.getByRole('heading', { name: 'This link no longer works' }).waitFor();
    await page.getByRole('alert').filter({ hasText: 'already used' }).waitFor();

    // Ask again from that page; this time the link expires before it is opened.
    await server.server.services.database.knex('counters').where({ key: `mail:reset:${user.id}` }).delete();
    const since = mailbox.messages.length;
    await page.getByLabel('Email').fill(dora.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    const late = mailbox.link(await mailbox.next(dora.email, { since }));
    await server.server.services.database.knex('one_time_codes').where({ user_id: user.id, purpose: 'password_reset' }).whereNull('used_at')
      .update({ expires_at: new Date(Date.now() - 1000) });
    await page.goto(late);
    await page.getByRole('alert').filter({ hasText: 'has expired' }).waitFor();
    assert.deepEqual(violations, [], 'no CSP violations or page errors');
    await context.close();
  });
});
