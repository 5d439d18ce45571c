import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumSuite, virtualAuthenticator, type VirtualAuthenticatorOptions } from '../helpers/chromium.ts';
import type { Person } from '../helpers/two-step.ts';
import { webauthnSteps, withoutPasskeyAutofill } from '../helpers/webauthn-browser.ts';

/** A credential as CDP's WebAuthn domain gives it (and takes it back, on another authenticator). */
interface HeldCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  privateKey: string;
  userHandle?: string;
  signCount: number;
}

const MFA = 'urn:latchkey:acr:mfa';

describe('security keys in Chromium (a virtual USB authenticator over CDP)', () => {
  const suite = chromiumSuite('seckey');
  const { violations } = suite;
  const { store, ofKind, newUser, password, answerQuestion, atApp } = webauthnSteps(suite);

  /**
   * A browser of its own (another device) with a security key plugged in: a CTAP2 USB authenticator, by
   * default with a PIN (user verification) and room for resident credentials; `platform` adds this device's
   * own face or fingerprint too. Passkey autofill is reported unsupported, so the buttons are what is tested.
   */
  async function openBrowser({ key = {}, platform = false }: { key?: Omit<VirtualAuthenticatorOptions, 'transport'>; platform?: boolean } = {}) {
    const app = await suite.openBrowser();
    await withoutPasskeyAutofill(app.context);
    const face = platform ? await virtualAuthenticator(app.page) : undefined;
    const securityKey = await virtualAuthenticator(app.page, { transport: 'usb', ...key });
    return { ...app, securityKey, face };
  }

  /** Signs in to "Password & security": the password, then the question a new device is asked for. */
  async function toSecurityPage(page: Page, user: Person) {
    await page.goto(`${suite.server.url}/account/security`);
    await password(page, user);
    await answerQuestion(page, user);
    await page.waitForURL((u) => u.pathname === '/account/security' || u.pathname.includes('/interaction/'));
    // A device with face or fingerprint is offered a passkey first.
    if (await page.getByRole('heading', { name: 'Sign in faster next time' }).isVisible().catch(() => false)) await page.getByRole('button', { name: 'Not now' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
  }

  /**
   * On "Password & security": adds a security key from its card ("Set up", or "Add another" behind "Manage"),
   * named; then the recovery codes, when it is the account's first possession method.
   */
  async function addKey(page: Page, name: string, { another = false, codes = !another }: { another?: boolean; codes?: boolean } = {}) {
    const card = page.locator('#method-security-key');
    if (!another) {
      await page.getByRole('link', { name: 'Set up Security key' }).click();
    } else {
      await card.locator('summary').filter({ hasText: 'Manage' }).click();
      await card.getByRole('link', { name: 'Add another' }).click();
    }
    await page.getByRole('heading', { name: 'Add a security key' }).waitFor();
    await page.getByLabel('Name this key').fill(name);
    await page.getByRole('button', { name: 'Add security key' }).click();
    if (codes) {
      await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
      await page.getByRole('link', { name: 'I have saved my codes' }).click();
    }
    await page.waitForURL((u) => u.pathname === '/account/security');
    await page.locator('#method-security-key-state').getByText('On', { exact: true }).waitFor();
  }

  it('adds a key from its card (a USB key with a PIN and a resident credential) and signs in with it without a password: acr phr, amr hwk+user+mfa', async () => {
    const user = await newUser();
    const { page, context, callbacks, securityKey } = await openBrowser();
    await toSecurityPage(page, user);
    await addKey(page, 'Keyring YubiKey');
    const [key] = await ofKind(user.id, 'security-key');
    assert.ok(key, 'one key stored');
    assert.equal(key.label, 'Keyring YubiKey');
    assert.ok((key.data as { transports: string[] }).transports.includes('usb'), 'it said how it is reached');
    assert.deepEqual(await ofKind(user.id, 'webauthn'), [], 'not a passkey');
    const held = (await securityKey.send('WebAuthn.getCredentials', { authenticatorId: securityKey.authenticatorId })) as { credentials: HeldCredential[] };
    assert.equal(held.credentials.length, 1);
    assert.equal(held.credentials[0]!.isResidentCredential, true, 'the key holds a discoverable credential');
    assert.match(await page.locator('#method-security-key-used').innerText(), /^Keyring YubiKey · /);
    assert.equal(await page.locator('#method-webauthn-state').innerText(), 'Off', 'the passkey card knows nothing of the key');
    assert.equal(await page.locator('#method-webauthn').getByText('Keyring YubiKey').count(), 0);

    await context.clearCookies();
    const { url, checks } = await suite.rp.authorization({ scope: 'openid' });
    await page.goto(url);
    await page.getByRole('button', { name: 'Use a security key' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.acr, 'phr');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['hwk', 'user', 'mfa']));
    assert.deepEqual(violations, []);
  });

  it('uses the key as the second step after the password: "Use your security key", acr phr, amr pwd+hwk+user+mfa', async () => {
    const user = await newUser();
    const { page, context, callbacks } = await openBrowser();
    await toSecurityPage(page, user);
    await addKey(page, 'Keyring YubiKey');
    await context.clearCookies({ name: '_session' });
    const { url, checks } = await suite.rp.authorization({ scope: 'openid', acr_values: MFA, prompt: 'login' });
    await page.goto(url);
    await password(page, user);
    await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
    await page.getByRole('button', { name: 'Use your security key' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'phr');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'user', 'mfa']));
    assert.ok((await ofKind(user.id, 'security-key'))[0]!.lastUsedAt, 'last used is recorded');
    assert.deepEqual(violations, []);
  });

  it('takes a key without a PIN (no user verification, no resident credential): after the password it gives amr pwd+hwk+mfa, never user', async () => {
    const user = await newUser();
    const { page, context, callbacks, securityKey } = await openBrowser({ key: { hasUserVerification: false, hasResidentKey: false } });
    await toSecurityPage(page, user);
    await addKey(page, 'Old U2F key');
    const held = (await securityKey.send('WebAuthn.getCredentials', { authenticatorId: securityKey.authenticatorId })) as { credentials: HeldCredential[] };
    assert.equal(held.credentials[0]!.isResidentCredential, false);

    await context.clearCookies({ name: '_session' });
    const { url, checks } = await suite.rp.authorization({ scope: 'openid', acr_values: MFA, prompt: 'login' });
    await page.goto(url);
    await password(page, user);
    await page.getByRole('button', { name: 'Use your security key' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'phr', 'the password and a phishing-resistant key');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'mfa']), 'possession only: no user');
    assert.deepEqual(violations, []);
  });

  it('goes to another device: there the key is offered (and "Try another way" lists it) while the passkey made on the first device cannot work', async () => {
    const user = await newUser();
    const home = await openBrowser({ platform: true });
    await toSecurityPage(home.page, user);
    await home.page.getByRole('link', { name: 'Turn on Sign in with face or fingerprint' }).click();
    await home.page.getByRole('button', { name: 'Turn on' }).click();
    await home.page.getByRole('link', { name: 'I have saved my codes' }).click();
    await home.page.waitForURL((u) => u.pathname === '/account/security');
    await addKey(home.page, 'Keyring YubiKey', { codes: false });
    const [passkey] = await ofKind(user.id, 'webauthn');
    const [key] = await ofKind(user.id, 'security-key');
    assert.ok(passkey && key, 'a passkey and a key');
    assert.notEqual(passkey.externalId, key.externalId);
    // Each card lists its own.
    assert.equal(await home.page.locator('#method-webauthn').getByText('Keyring YubiKey').count(), 0, 'the passkey card does not list the key');
    assert.equal(await home.page.locator('#method-security-key').getByText(passkey.label).count(), 0, 'the key card does not list the passkey');

    // The key is unplugged and plugged into another computer, which has no face or fingerprint.
    const held = (await home.securityKey.send('WebAuthn.getCredentials', { authenticatorId: home.securityKey.authenticatorId })) as { credentials: HeldCredential[] };
    assert.equal(held.credentials.length, 1);
    const away = await openBrowser();
    await away.securityKey.send('WebAuthn.addCredential', { authenticatorId: away.securityKey.authenticatorId, credential: held.credentials[0] });

    const { url, checks } = await suite.rp.authorization({ scope: 'openid', acr_values: MFA });
    await away.page.goto(url);
    await password(away.page, user);
    await away.page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
    assert.equal(await away.page.locator('#passkey-assert').count(), 0, 'never opened on the passkey here');
    await away.page.locator('#security-key-assert').waitFor();
    await away.page.getByRole('link', { name: 'Try another way' }).click();
    const methods = away.page.locator('#methods');
    await methods.waitFor();
    const unavailable = methods.locator('li.unavailable');
    assert.equal(await unavailable.count(), 1, 'only the passkey is out of reach');
    assert.match(await unavailable.innerText(), /This device has no face or fingerprint sign-in\./);
    await methods.getByRole('link', { name: 'Use your security key (Keyring YubiKey)' }).click();
    await away.page.getByRole('button', { name: 'Use your security key' }).click();
    const claims = await atApp(away.page, away.callbacks, checks);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.acr, 'phr');
    assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'user', 'mfa']));
    assert.deepEqual(violations, []);
  });

  it('refuses the same key twice, renames and removes a key on its card; once removed it no longer signs in', async () => {
    const user = await newUser();
    const { page, context } = await openBrowser();
    await toSecurityPage(page, user);
    await addKey(page, 'Keyring YubiKey');
    const [key] = await ofKind(user.id, 'security-key');
    // The same key again: excluded by the options, the browser refuses, and the page says why.
    await page.locator('#method-security-key summary').filter({ hasText: 'Manage' }).click();
    await page.locator('#method-security-key').getByRole('link', { name: 'Add another' }).click();
    await page.getByRole('button', { name: 'Add security key' }).click();
    await page.getByRole('alert').filter({ hasText: 'This security key is already set up for your account.' }).waitFor();
    assert.equal((await ofKind(user.id, 'security-key')).length, 1);
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
    // Adding the key proved it: the next change asks for nothing again. Renaming is behind "Manage".
    const card = page.locator('#method-security-key');
    await card.locator('summary').filter({ hasText: 'Manage' }).click();
    await card.getByLabel('Name').first().fill('Spare key');
    await card.getByRole('button', { name: 'Rename' }).first().click();
    await page.getByRole('status').filter({ hasText: 'The method was renamed.' }).waitFor();
    assert.equal((await store().authenticators.find(user.id, key!.id))!.label, 'Spare key');
    assert.match(await page.locator('#method-security-key-used').innerText(), /^Spare key · /);

    await card.locator('summary').filter({ hasText: 'Manage' }).click();
    await card.getByRole('button', { name: 'Remove' }).first().click();
    await page.getByRole('status').filter({ hasText: 'The method was removed.' }).waitFor();
    assert.deepEqual(await ofKind(user.id, 'security-key'), []);
    assert.equal(await page.locator('#method-security-key-state').innerText(), 'Off');

    await context.clearCookies();
    await page.goto(`${suite.server.url}/account`);
    await page.getByRole('button', { name: 'Use a security key' }).click();
    await page.getByRole('alert').filter({ hasText: 'That passkey or security key is not known here.' }).waitFor();
    assert.deepEqual(violations, []);
  });
});
