import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import type { BrowserContextOptions, Page } from 'playwright-core';
import { seriousViolations } from '../helpers/axe.ts';
import { chromiumSuite, virtualAuthenticator } from '../helpers/chromium.ts';
import { maskPhone } from '../../src/delivery/sms.ts';
import { addQuestion, addTotp } from '../helpers/two-step.ts';

/** Where the screenshots go for a reviewer to look at (git-ignored): test-output/screenshots at the project root. */
const SHOTS = fileURLToPath(new URL('../../test-output/screenshots/', import.meta.url));

const SIZES = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
} as const;
type Size = keyof typeof SIZES;

/** The cards from the strongest method to the weakest: a passkey, a security key, an app, the phone app's prompts, a phone (the weaker backup), recovery codes, the question. */
const STRONGEST_FIRST = ['webauthn', 'security-key', 'totp', 'push', 'sms', 'recovery-code', 'security-question'];

describe('"Password & security" as a control panel, in Chromium', () => {
  const suite = chromiumSuite('panel');
  before(() => mkdir(SHOTS, { recursive: true }));

  const store = () => suite.server.server.services.store;
  const hash = (s: string) => suite.server.server.services.hasher.hash(s);

  /** A context of its own (its cookies from `storageState`), watched for CSP violations and page errors. */
  const open = (options: BrowserContextOptions): Promise<Page> => suite.openPage(options);

  async function signIn(page: Page, user: { email: string; password: string }) {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /**
   * A user with every method on: the security question, a passkey made on this device through the page
   * (face or fingerprint: Chromium's virtual authenticator), then a security key, an authenticator app and a
   * phone; the recovery codes came with the passkey. Returns the signed-in browser's cookies.
   */
  let everyMethod: { user: { id: string; email: string; password: string }; storageState: BrowserContextOptions['storageState'] };
  before(async () => {
    const user = await suite.newUser();
    await addQuestion(store(), hash, user.id, 'rex the dog');
    const { page, context } = await suite.openBrowser();
    await virtualAuthenticator(page);
    await page.goto(`${suite.server.url}/account/security`);
    await signIn(page, user);
    await page.getByLabel('Your answer').fill('rex the dog');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'Not now' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
    await page.getByRole('link', { name: 'Turn on Sign in with face or fingerprint' }).click();
    await page.getByRole('button', { name: 'Turn on' }).click();
    await page.getByRole('link', { name: 'I have saved my codes' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
    // As a registration from the key's card stores it (security-key-browser.test.ts adds them through the page).
    await store().authenticators.insert({
      userId: user.id, kind: 'security-key', label: 'YubiKey 5 NFC', publicKey: 'pQECAyYgASFYIA', externalId: 'c2VjdXJpdHkta2V5',
      data: { counter: 0, transports: ['usb', 'nfc'], backupEligible: false, backedUp: false },
    });
    const app = await addTotp(store(), user.id, 'Pixel phone');
    // Named as an enrolment names it: the number masked.
    await store().authenticators.insert({ userId: user.id, kind: 'sms', label: maskPhone('+447911123456'), data: { phone: '+447911123456' } });
    // A phone paired for mobile app prompts, as a finished pairing leaves it (test/push/ pairs them through the API).
    const device = await store().pushDevices.insert({ userId: user.id, pairingId: `panel-${user.id}`, keyId: `panel-key-${user.id}`, publicKey: {}, name: 'Pixel phone app', subscription: undefined, vapidKeyId: null });
    await store().pushDevices.confirm(device.id);
    const phone = await store().authenticators.insert({ userId: user.id, kind: 'push', label: 'Pixel phone app', externalId: device.id, data: { deviceId: device.id } });
    await store().pushDevices.linkAuthenticator(device.id, phone.id);
    const question = (await store().authenticators.listForUser(user.id)).find((a) => a.kind === 'security-question')!;
    await store().authenticators.markUsed(app.id);
    await store().authenticators.markUsed(question.id);
    const kinds = (await store().authenticators.listForUser(user.id)).map((a) => a.kind).sort();
    assert.deepEqual(kinds, [...STRONGEST_FIRST].sort(), 'every method is on');
    everyMethod = { user, storageState: await context.storageState() };
  });

  for (const size of Object.keys(SIZES) as Size[]) {
    for (const scheme of ['light', 'dark'] as const) {
      it(`${size}, ${scheme}: the choice of when to ask comes first, then a card per method, strongest first; no serious accessibility violation`, async () => {
        const viewport = SIZES[size];
        const page = await open({ storageState: everyMethod.storageState, viewport, colorScheme: scheme });
        await page.goto(`${suite.server.url}/account/security`);
        await page.getByRole('heading', { name: 'Password & security', level: 1 }).waitFor();

        // When to ask: a group of two options with a save button, above every method.
        const choice = page.getByRole('group', { name: 'When to ask for verification' });
        assert.equal(await choice.getByRole('radio').count(), 2);
        assert.equal(await choice.getByLabel('Verify only when a sign-in looks risky').isChecked(), true, 'the saved preference');
        const choiceBox = (await choice.boundingBox())!;
        const firstCard = (await page.locator('section.method').first().boundingBox())!;
        assert.ok(choiceBox.y + choiceBox.height < firstCard.y, 'the choice is above the methods');

        // One card per method, strongest first, each on, with when it was last used.
        const cards = await page.locator('section.method').evaluateAll((els) => els.map((el) => el.id));
        assert.deepEqual(cards, STRONGEST_FIRST.map((k) => `method-${k}`));
        for (const kind of STRONGEST_FIRST) {
          assert.equal(await page.locator(`#method-${kind}-state`).innerText(), 'On', kind);
          assert.equal(await page.getByRole('region', { name: await page.locator(`#method-${kind}-name`).innerText() }).count(), 1, `${kind} is a named region`);
        }
        assert.equal(await page.locator('#method-webauthn .strength').innerText(), 'Strongest');
        assert.equal(await page.locator('#method-security-key .strength').innerText(), 'Strongest');
        assert.equal(await page.locator('#method-sms .strength').innerText(), 'Weaker: keep it as a backup');
        assert.equal(await page.locator('.strength').count(), 3, 'only those three are marked');
        assert.match(await page.locator('#method-security-key-used').innerText(), /^YubiKey 5 NFC · Not used yet$/);
        assert.match(await page.locator('#method-totp-used').innerText(), /^Pixel phone · Last used \S.*\d{4}/);
        assert.match(await page.locator('#method-security-question-used').innerText(), /^Last used \S.*\d{4}/);
        assert.match(await page.locator('#method-sms-used').innerText(), /Not used yet$/);
        assert.match(await page.locator('#recovery-left').innerText(), /^10 of 10 codes left\./);
        await page.locator('#passkey-here').waitFor();

        // Renaming is behind "Manage": hidden until it is opened.
        const rename = page.locator('#method-totp input[name=label]');
        assert.equal(await rename.isVisible(), false, 'no open text box');
        await page.locator('#method-totp summary').click();
        assert.equal(await rename.isVisible(), true);
        assert.equal(await rename.inputValue(), 'Pixel phone');
        await page.locator('#method-totp summary').click();

        await page.screenshot({ path: `${SHOTS}security-${size}-${scheme}.png`, fullPage: true });
        const violations = await seriousViolations(page);
        assert.deepEqual(violations, [], `axe: ${violations.join('\n')}`);
        const side = async (kind: string) => (await page.locator(`#method-${kind}`).boundingBox())!;
        if (size === 'desktop') assert.equal((await side('security-key')).y, (await side('webauthn')).y, 'on a desktop the cards sit side by side');
        if (size === 'phone') {
          assert.ok((await side('security-key')).y > (await side('webauthn')).y, 'on a phone they stack');
          const { height, width } = await page.evaluate(() => ({ height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth }));
          assert.ok(height <= 2 * viewport.height + 40, `at most about two screens on a phone, got ${height} px`);
          assert.ok(width <= viewport.width, `no sideways scrolling, got ${width} px`);
        }
        assert.deepEqual(suite.violations, []);
      });

      it(`${size}, ${scheme}: the sign-in page, with no serious accessibility violation`, async () => {
        const page = await open({ viewport: SIZES[size], colorScheme: scheme });
        await page.goto((await suite.rp.authorization()).url);
        await page.getByRole('heading', { name: 'Sign in' }).waitFor();
        const violations = await seriousViolations(page);
        assert.deepEqual(violations, [], `axe: ${violations.join('\n')}`);
        await page.screenshot({ path: `${SHOTS}sign-in-${size}-${scheme}.png`, fullPage: true });
        assert.deepEqual(suite.violations, []);
      });
    }
  }

  it('for a new user, every method but the question says it needs the question first and links to its card; only the question can be set up', async () => {
    const user = await suite.newUser();
    const { page: first, context } = await suite.openBrowser();
    await first.goto(`${suite.server.url}/account/security`);
    await signIn(first, user);
    await first.waitForURL((u) => u.pathname === '/account/security');
    const storageState = await context.storageState();
    for (const scheme of ['light', 'dark'] as const) {
      const page = await open({ storageState, viewport: SIZES.phone, colorScheme: scheme });
      await page.goto(`${suite.server.url}/account/security`);
      for (const kind of STRONGEST_FIRST.filter((k) => k !== 'security-question')) {
        const state = page.locator(`#method-${kind}-state`);
        assert.equal(await state.innerText(), 'Needs the security question first', kind);
        assert.equal(await state.getAttribute('href'), '#method-security-question', kind);
        assert.equal(await page.locator(`#method-${kind}`).getByRole('link', { name: /^Set up|^Turn on/ }).count(), 0, `${kind} cannot be set up yet`);
        assert.equal(await page.locator(`#method-${kind} .about`).isVisible(), true, `${kind} says what it is while it is off`);
      }
      assert.equal(await page.locator('#method-security-question-state').innerText(), 'Off');
      await page.getByRole('link', { name: 'Set up Security question' }).waitFor();
      const violations = await seriousViolations(page);
      assert.deepEqual(violations, [], `axe: ${violations.join('\n')}`);
      await page.locator('#method-totp-state').click();
      assert.equal(new URL(page.url()).hash, '#method-security-question');
    }
    assert.deepEqual(suite.violations, []);
  });

  it('works without JavaScript: renames behind "Manage", and saves when to ask from the top of the page', async () => {
    const page = await open({ storageState: everyMethod.storageState, javaScriptEnabled: false, viewport: SIZES.phone });
    const { user } = everyMethod;
    await page.goto(`${suite.server.url}/account/security`);
    const card = page.locator('#method-totp');
    await card.locator('summary').click();
    await card.getByLabel('Name').fill('Work phone');
    await card.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('status').filter({ hasText: 'The method was renamed.' }).waitFor();
    assert.equal((await store().authenticators.listForUser(user.id)).find((a) => a.kind === 'totp')!.label, 'Work phone');
    assert.match(await page.locator('#method-totp-used').innerText(), /^Work phone · /);

    // The passkey parts the script would show stay hidden; the page says what needs the script.
    assert.equal(await page.locator('[data-passkey-capable], [data-passkey-incapable]').filter({ visible: true }).count(), 0);

    const choice = page.getByRole('group', { name: 'When to ask for verification' });
    await choice.getByLabel('Verify at every sign-in').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Your verification setting was saved.' }).waitFor();
    assert.equal(await page.getByRole('group', { name: 'When to ask for verification' }).getByLabel('Verify at every sign-in').isChecked(), true);
    assert.equal((await store().users.findById(user.id))!.verificationPreference, 'always');
    await store().users.setVerificationPreference(user.id, 'risky');
    assert.deepEqual(suite.violations, []);
  });
});
