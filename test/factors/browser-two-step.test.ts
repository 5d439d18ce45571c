import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { backAtApp, chromiumSuite } from '../helpers/chromium.ts';
import { smsConfig, startSmsReceiver, type SmsReceiver } from '../helpers/receiver.ts';
import { RelyingParty } from '../helpers/rp.ts';
import type { TestServer } from '../helpers/server.ts';
import { addQuestion, addRecoveryCodes, addSmsPhone, addTotp, awaitFreshStep, base32Decode, nowSeconds, totpCode } from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';

interface Person {
  id: string;
  email: string;
  password: string;
}

describe('two-step verification in Chromium', () => {
  let receiver: SmsReceiver;
  before(async () => {
    receiver = await startSmsReceiver();
  });
  const suite = chromiumSuite('twostep', () => ({ twoStep: { sms: smsConfig(receiver, 'webhook', { resendIntervalSeconds: 10 }) } }));
  after(() => receiver.stop());
  let server: TestServer;
  let rp: RelyingParty;
  before(() => {
    ({ server, rp } = suite);
  });
  const { violations } = suite;

  const services = () => server.server.services;
  const hash = (s: string) => services().hasher.hash(s);

  const newUser = (): Promise<Person> => suite.newUser();
  const openBrowser = () => suite.openBrowser();

  async function password(page: Page, user: Person) {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** Finishes at the app (consenting when asked) and returns the ID token's claims. */
  async function atApp(page: Page, callbacks: string[], checks: Parameters<RelyingParty['callback']>[1]) {
    return (await rp.callback(await backAtApp(page, callbacks), checks)).claims()!;
  }

  const amrOf = (claims: Record<string, unknown>) => new Set(claims.amr as string[]);

  it('enrols a security question, an authenticator app (QR code and key shown, active after one code, named) and a phone on the account page; recovery codes come with the first', async () => {
    const user = await newUser();
    const { page } = await openBrowser();
    await page.goto(`${server.url}/account/security`);
    await password(page, user);
    await page.waitForURL((u) => u.pathname === '/account/security');

    // Before the question, the other methods say why they cannot be added, and offer no way to add them.
    assert.equal(await page.locator('#method-totp-state').innerText(), 'Needs the security question first');
    assert.equal(await page.locator('#method-totp').getByRole('link', { name: /Set up/ }).count(), 0);
    await page.getByRole('link', { name: 'Set up Security question' }).click();
    await page.getByLabel('Choose a question').selectOption('custom');
    await page.getByLabel('Your own question').fill('Which beach did we camp on in 2009?');
    await page.getByLabel('Your answer').fill('Playa de Cofete');
    await page.getByRole('button', { name: 'Save security question' }).click();
    await page.getByRole('status').filter({ hasText: 'The method was added.' }).waitFor();

    await page.getByRole('link', { name: 'Set up Authenticator app' }).click();
    const qr = page.locator('#totp-qr');
    await qr.waitFor();
    assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/, 'a QR code drawn on the server');
    assert.ok(await qr.evaluate((img) => (img as HTMLImageElement).naturalWidth > 0), 'the QR code image renders');
    const seed = (await page.locator('#totp-secret').innerText()).replace(/\s/g, '');
    await page.getByLabel('Code from the app').fill('000000');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('alert').filter({ hasText: 'That code is not right' }).waitFor();
    assert.equal((await services().store.authenticators.listForUser(user.id)).filter((a) => a.kind === 'totp').length, 0, 'not active before a right code');
    await awaitFreshStep();
    await page.getByLabel('Code from the app').fill(totpCode(base32Decode(seed), nowSeconds()));
    await page.getByLabel('Name this app').fill('Pixel phone');
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    const codes = await page.locator('#recovery-codes code').allInnerTexts();
    assert.equal(codes.length, 10);
    assert.ok(codes.every((c) => /^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/.test(c)));
    assert.equal(await page.locator('#download-codes').getAttribute('download'), 'recovery-codes.txt');
    await page.getByRole('link', { name: 'I have saved my codes' }).click();
    await page.locator('#method-totp-used').getByText('Pixel phone').waitFor();
    await page.getByText('10 of 10 codes left.').waitFor();

    // Adding the app proved it (a recent sign-in at mfa); once that sign-in is old, a change needs a new sign-in
    // at mfa: the phone is added after a step-up with the app.
    await services().database.knex('account_sessions').where({ user_id: user.id }).update({ auth_time: new Date(Date.now() - 3_600_000) });
    await page.getByRole('link', { name: 'Set up Text message' }).click();
    await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
    await awaitFreshStep();
    const step = totpCode(base32Decode(seed), nowSeconds() + 30);
    await page.waitForTimeout(Math.max(0, (Math.floor(nowSeconds() / 30) + 1) * 30_000 - Date.now() + 200));
    await page.getByLabel(/Enter the 6-digit code from Pixel phone/).fill(step);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByLabel('Mobile phone number').fill('+44 7911 123456');
    const since = receiver.messages.length;
    await page.getByRole('button', { name: 'Send code' }).click();
    const sms = await receiver.next('+447911123456', { since });
    await page.getByLabel(/Enter the 6-digit code we sent to/).fill(sms.code);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('status').filter({ hasText: 'The method was added.' }).waitFor();
    const kinds = (await services().store.authenticators.listForUser(user.id)).map((a) => a.kind).sort();
    assert.deepEqual(kinds, ['recovery-code', 'security-question', 'sms', 'totp']);
    assert.deepEqual(violations, []);
  });

  it('signs in at an app with the security question when the device is new: acr 1fa, amr pwd+kba+rba, and the reason is shown', async () => {
    const user = await newUser();
    await addQuestion(services().store, hash, user.id, 'rex the dog');
    const { page, callbacks } = await openBrowser();
    const { url, checks } = await rp.authorization({ scope: 'openid' });
    await page.goto(url);
    await password(page, user);
    await page.getByText("We don't recognise this device.").waitFor();
    await page.getByLabel('Your answer').fill('  Rex The DOG ');
    await page.getByRole('button', { name: 'Continue' }).click();
    const claims = await atApp(page, callbacks, checks);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
    assert.deepEqual(amrOf(claims), new Set(['pwd', 'kba', 'rba']));
    assert.deepEqual(violations, []);
  });

  it('signs in with an authenticator app, then with a text message and a recovery code through "Try another way"', async () => {
    const user = await newUser();
    const store = services().store;
    await addQuestion(store, hash, user.id);
    const app = await addTotp(store, user.id, 'Pixel phone');
    await addSmsPhone(store, user.id, '+447911654321');
    const [code] = await addRecoveryCodes(store, user.id);

    const first = await openBrowser();
    let req = await rp.authorization({ scope: 'openid', acr_values: MFA });
    await first.page.goto(req.url);
    await password(first.page, user);
    await awaitFreshStep();
    await first.page.getByLabel(/Enter the 6-digit code from Pixel phone/).fill(totpCode(app.key, nowSeconds()));
    await first.page.getByRole('button', { name: 'Verify' }).click();
    let claims = await atApp(first.page, first.callbacks, req.checks);
    assert.equal(claims.acr, MFA);
    assert.deepEqual(amrOf(claims), new Set(['pwd', 'otp', 'mfa']));

    const second = await openBrowser();
    req = await rp.authorization({ scope: 'openid', acr_values: MFA });
    await second.page.goto(req.url);
    await password(second.page, user);
    await second.page.getByRole('link', { name: 'Try another way' }).click();
    const since = receiver.messages.length;
    await second.page.getByRole('link', { name: /Text a code to/ }).click();
    const sms = await receiver.next('+447911654321', { since });
    await second.page.getByLabel(/Enter the 6-digit code we sent to/).fill(sms.code);
    await second.page.getByRole('button', { name: 'Verify' }).click();
    claims = await atApp(second.page, second.callbacks, req.checks);
    assert.deepEqual(amrOf(claims), new Set(['pwd', 'sms', 'mfa']));

    const third = await openBrowser();
    req = await rp.authorization({ scope: 'openid', acr_values: MFA });
    await third.page.goto(req.url);
    await password(third.page, user);
    await third.page.getByRole('link', { name: 'Try another way' }).click();
    await third.page.getByRole('link', { name: 'Use a recovery code' }).click();
    await third.page.getByLabel('Enter one of your recovery codes').fill(code!.toLowerCase());
    await third.page.getByRole('button', { name: 'Verify' }).click();
    await third.page.getByText('You have 9 recovery codes left.').waitFor();
    await third.page.getByRole('button', { name: 'Continue to' }).click();
    claims = await atApp(third.page, third.callbacks, req.checks);
    assert.equal(claims.acr, MFA);
    assert.deepEqual(amrOf(claims), new Set(['pwd', 'otp', 'mfa']));
    assert.equal(await store.codes.countLive('recovery_code', user.id), 9);
    assert.deepEqual(violations, []);
  });

  it('falls back when the text-message provider is down: the page says so and offers the other methods', async () => {
    const user = await newUser();
    const store = services().store;
    await addQuestion(store, hash, user.id);
    await addSmsPhone(store, user.id, '+447911000111');
    await addRecoveryCodes(store, user.id);
    const { page } = await openBrowser();
    receiver.mode = 'error';
    try {
      const req = await rp.authorization({ scope: 'openid', acr_values: MFA });
      await page.goto(req.url);
      await password(page, user);
      await page.getByRole('alert').filter({ hasText: "We couldn't send a text message right now" }).waitFor();
      await page.getByRole('link', { name: 'Use a recovery code' }).waitFor();
    } finally {
      receiver.mode = 'ok';
    }
    assert.deepEqual(violations, []);
  });
});
