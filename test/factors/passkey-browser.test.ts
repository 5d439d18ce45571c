import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumSuite, virtualAuthenticator } from '../helpers/chromium.ts';
import type { Person } from '../helpers/two-step.ts';
import { webauthnSteps, withoutPasskeyAutofill } from '../helpers/webauthn-browser.ts';

describe('passkeys in Chromium (a virtual platform authenticator over CDP)', () => {
  const suite = chromiumSuite('passkey');
  const { violations } = suite;
  const { store, ofKind, newUser, password, answerQuestion, atApp } = webauthnSteps(suite);
  const passkeysOf = (id: string) => ofKind(id, 'webauthn');

  /**
   * A browser of its own with a platform authenticator (CTAP2, internal, resident keys, UV). Without
   * `autofill`, the page reports that passkey autofill is unsupported, so the buttons are what is tested
   * (the virtual authenticator answers an autofill request by itself).
   */
  async function openBrowser({ autofill = false } = {}) {
    const app = await suite.openBrowser();
    if (!autofill) await withoutPasskeyAutofill(app.context);
    const authenticator = await virtualAuthenticator(app.page);
    return { ...app, authenticator };
  }

  /** The password, then the security question a new device is asked for. */
  async function passwordAndQuestion(page: Page, user: Person) {
    await password(page, user);
    await answerQuestion(page, user);
  }

  /** Signs in to the account page, says "Not now" to the offer, and turns passkey sign-in on there. */
  async function enrolFromAccount(page: Page, user: Person) {
    await page.goto(`${suite.server.url}/account`);
    await passwordAndQuestion(page, user);
    await page.getByRole('heading', { name: 'Sign in faster next time' }).waitFor();
    await page.getByRole('button', { name: 'Not now' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    await page.goto(`${suite.server.url}/account/security`);
    await page.getByRole('link', { name: 'Turn on Sign in with face or fingerprint' }).click();
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    await page.getByRole('link', { name: 'I have saved my codes' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
  }

  it('enrols from the account page (platform, user verification, resident key) and signs in with the button alone: acr phr, amr hwk+user+mfa', async () => {
    const user = await newUser();
    const { page, callbacks, context, authenticator } = await openBrowser();
    await enrolFromAccount(page, user);
    const [passkey] = await passkeysOf(user.id);
    assert.ok(passkey, 'one passkey stored');
    assert.ok(passkey.publicKey && passkey.externalId, 'its public key and credential id');
    assert.equal((passkey.data as { backupEligible: boolean }).backupEligible, false);
    const held = (await authenticator.send('WebAuthn.getCredentials', { authenticatorId: authenticator.authenticatorId })) as { credentials: { isResidentCredential: boolean }[] };
    assert.equal(held.credentials.length, 1);
    assert.equal(held.credentials[0]!.isResidentCredential, true, 'a discoverable credential');
    await page.locator('#method-webauthn-state').getByText('On', { exact: true }).waitFor();

    await context.clearCookies();
    const { url, checks } = await suite.rp.authorization({ scope: 'openid' });
    await page.goto(url);
    await page.getByRole('button', { name: 'Sign in with face or fingerprint' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'phr');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['hwk', 'user', 'mfa']));
    assert.equal(claims.sub, user.id);
    assert.deepEqual(violations, []);
  });

  it('signs in through passkey autofill on the email field (conditional mediation)', async () => {
    const user = await newUser();
    const { page, callbacks, context } = await openBrowser({ autofill: true });
    await enrolFromAccount(page, user);
    await context.clearCookies();
    const { url, checks } = await suite.rp.authorization({ scope: 'openid' });
    await page.goto(url);
    // No click: the autofill request started with the page, and the authenticator answers it.
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'phr');
    assert.equal(claims.sub, user.id);
    assert.deepEqual(violations, []);
  });

  it('adds a passkey from the offer after signing in, and "Don\'t ask again" is remembered for that user on that device', async () => {
    const user = await newUser();
    const { page, callbacks } = await openBrowser();
    let req = await suite.rp.authorization({ scope: 'openid' });
    await page.goto(req.url);
    await passwordAndQuestion(page, user);
    await page.getByRole('heading', { name: 'Sign in faster next time' }).waitFor();
    await page.getByRole('button', { name: 'Turn on' }).click();
    const claims = await atApp(page, callbacks, req.checks);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa', 'this sign-in was the password and the question');
    assert.equal((await passkeysOf(user.id)).length, 1, 'the passkey was added');

    const other = await newUser();
    const second = await openBrowser();
    req = await suite.rp.authorization({ scope: 'openid' });
    await second.page.goto(req.url);
    await passwordAndQuestion(second.page, other);
    await second.page.getByRole('button', { name: "Don't ask again on this device" }).click();
    await atApp(second.page, second.callbacks, req.checks);
    // Signed out at the app side only: the same browser (device cookie kept) signs in again with the password.
    await second.context.clearCookies({ name: '_session' });
    req = await suite.rp.authorization({ scope: 'openid', prompt: 'login' });
    await second.page.goto(req.url);
    await password(second.page, other);
    const again = await atApp(second.page, second.callbacks, req.checks);
    assert.equal(again.sub, other.id, 'straight back to the app: no offer this time');
    assert.equal((await passkeysOf(other.id)).length, 0);
    assert.deepEqual(violations, []);
  });

  it('uses a passkey as the second step after the password: amr pwd+hwk+user+mfa, acr phr', async () => {
    const user = await newUser();
    const { page, callbacks, context } = await openBrowser();
    await enrolFromAccount(page, user);
    await context.clearCookies();
    const { url, checks } = await suite.rp.authorization({ scope: 'openid', acr_values: 'urn:latchkey:acr:mfa' });
    await page.goto(url);
    await password(page, user);
    await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
    await page.getByRole('button', { name: 'Use face or fingerprint' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'phr');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'user', 'mfa']));
    assert.deepEqual(violations, []);
  });

  it('renames and removes a passkey, and turning sign-in with face or fingerprint off makes it stop working', async () => {
    const user = await newUser();
    const { page, context } = await openBrowser();
    await enrolFromAccount(page, user);
    const [passkey] = await passkeysOf(user.id);
    // Adding the passkey proved it (face or fingerprint just now): the next change asks for nothing again.
    // Renaming is behind "Manage".
    const card = page.locator('#method-webauthn');
    await card.locator('summary').filter({ hasText: 'Manage' }).click();
    await card.getByLabel('Name').first().fill('Work laptop');
    await card.getByRole('button', { name: 'Rename' }).first().click();
    await page.getByRole('status').filter({ hasText: 'The method was renamed.' }).waitFor();
    assert.equal((await store().authenticators.find(user.id, passkey!.id))!.label, 'Work laptop');

    await page.getByRole('button', { name: 'Turn off' }).click();
    await page.getByRole('status').filter({ hasText: 'Sign-in with face or fingerprint is off.' }).waitFor();
    assert.equal((await passkeysOf(user.id)).length, 0);

    await context.clearCookies();
    await page.goto(`${suite.server.url}/account`);
    await page.getByRole('button', { name: 'Sign in with face or fingerprint' }).click();
    await page.getByRole('alert').filter({ hasText: 'That passkey or security key is not known here.' }).waitFor();
    assert.deepEqual(violations, []);
  });
});
