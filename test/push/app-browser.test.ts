/**
 * The phone app in real browsers. In Chromium: it loads under its CSP without a console error, registers
 * its module service worker for /app/, makes a device key that cannot leave the browser, and signs requests
 * that the server's check (src/push/device-signature.ts) accepts, and refuses once tampered with; its
 * screens are driven through pairing, a test prompt, a sign-in prompt with a wrong number, "This wasn't me"
 * and signing out against a stand-in for /app/api/ (the real API has its own tests), which checks every
 * signature; its worker turns pushes (delivered over DevTools) into notifications. In Firefox, whose push
 * service a test can run: a real push shows the notification, and tapping it opens the prompt screen.
 * Last, the software device of the HTTP tests is held to the same check.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { BrowserContext, Page, Request, Route } from 'playwright-core';
import { thumbprint, verifyDeviceSignature, type DeviceJwk, type SignedParts } from '../../src/push/device-signature.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { chromiumSuite } from '../helpers/chromium.ts';
import { clickNotification, launchFirefox, type Firefox } from '../helpers/firefox.ts';
import { PushService } from '../helpers/push-service.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { generateKeyPairSync } from 'node:crypto';
import { after, before } from 'node:test';
import webpush from 'web-push';

const ICON = readFileSync(path.resolve(import.meta.dirname, '..', '..', 'app', 'icons', 'icon-192.png'));
const LOGO = 'https://logo.example.test/notes.png';
/** The app's modules, imported by scripts run in its page (a variable, so TypeScript does not look for them here). */
const DEVICE_JS: string = '/app/device.js';
const PUSH_JS: string = '/app/push.js';
const STRINGS_JS: string = '/app/strings.js';

/** The page's console errors and CSP violations (reported by the page itself as they happen). */
async function watchErrors(page: Page): Promise<string[]> {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(() => {
    addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return errors;
}

/** The signed parts of a request the browser sent, as the server reads them. */
function partsOf(request: Request): { parts: SignedParts; keyId: string; signature: string } {
  const h = request.headers();
  return {
    parts: { method: request.method(), url: request.url(), time: h['latchkey-time'] ?? '', nonce: h['latchkey-nonce'] ?? '', body: request.postData() ?? '' },
    keyId: h['latchkey-device'] ?? '',
    signature: h['latchkey-signature'] ?? '',
  };
}

type Prompt = Record<string, unknown> & { id: string; kind: string };

const prompt = (id: string, kind: string, extra: Record<string, unknown> = {}): Prompt => ({
  id, kind, client: { name: 'Notes', logoUrl: null }, browser: 'Firefox 153', os: 'Linux',
  place: { ip: '203.0.113.x', country: 'DE' }, createdAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 120_000).toISOString(), bindingMessage: null, numberDigits: kind === 'ciba' ? null : 3, ...extra,
});

/**
 * A stand-in for /app/api/ inside the browser context: answers as docs/mobile-app-protocol.md says, and
 * checks each signed request with the server's own verifyDeviceSignature, its key id, nonce and time.
 */
class StandInApi {
  jwk: DeviceJwk | undefined;
  state = 'pairing';
  prompts: Prompt[] = [];
  /** What a POST to approve a prompt answers, by prompt id (default: approved). */
  approveAnswers = new Map<string, { status: number; json: unknown }[]>();
  readonly calls: { method: string; path: string; body: unknown }[] = [];
  readonly problems: string[] = [];
  private readonly nonces = new Set<string>();

  async install(context: BrowserContext, origin: string): Promise<void> {
    await context.route(`${origin}/app/api/**`, (route) => this.answer(route, new URL(route.request().url()).pathname));
  }

  private check(request: Request, pathname: string, body: Record<string, unknown>): void {
    const { parts, keyId, signature } = partsOf(request);
    const jwk = pathname === '/app/api/pair' ? (body.publicKey as DeviceJwk) : this.jwk;
    if (!jwk) return void this.problems.push(`${pathname}: no key yet`);
    if (keyId !== thumbprint(jwk)) this.problems.push(`${pathname}: key id ${keyId} is not the key's thumbprint`);
    if (!verifyDeviceSignature(jwk, parts, signature)) this.problems.push(`${request.method()} ${pathname}: bad signature`);
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(parts.nonce) || this.nonces.has(parts.nonce)) this.problems.push(`${pathname}: nonce ${parts.nonce}`);
    this.nonces.add(parts.nonce);
    if (Math.abs(Number(parts.time) - Date.now()) > 60_000) this.problems.push(`${pathname}: time ${parts.time}`);
  }

  private async answer(route: Route, pathname: string): Promise<void> {
    const request = route.request();
    const body = request.postData() ? (JSON.parse(request.postData()!) as Record<string, unknown>) : {};
    this.calls.push({ method: request.method(), path: pathname, body });
    const reply = (status: number, json: unknown) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(json) });
    if (pathname === '/app/api/config') return reply(200, { vapidPublicKey: null, productName: 'Acme Login' });
    this.check(request, pathname, body);
    if (pathname === '/app/api/pair') {
      this.jwk = body.publicKey as DeviceJwk;
      this.prompts = [prompt('test-1', 'test')];
      return reply(201, { device: { id: 'device-1', name: body.name, state: 'pairing' } });
    }
    const device = { id: 'device-1', name: 'My phone', state: this.state };
    if (pathname === '/app/api/prompts') return reply(200, { device, vapidPublicKey: null, prompts: this.prompts });
    if (pathname === '/app/api/sign-out') return reply(200, {});
    const [, id, action] = /^\/app\/api\/prompts\/([^/]+)(?:\/(approve|deny))?$/.exec(pathname) ?? [];
    const found = this.prompts.find((p) => p.id === decodeURIComponent(id ?? ''));
    if (!found) return reply(404, { error: 'unknown_prompt', message: 'No such prompt.' });
    if (!action) return reply(200, found);
    const planned = action === 'approve' ? this.approveAnswers.get(found.id)?.shift() : undefined;
    if (planned) return reply(planned.status, planned.json);
    this.prompts = this.prompts.filter((p) => p !== found);
    if (found.kind === 'test') this.state = 'open-app';
    return reply(200, { status: action === 'approve' ? 'approved' : 'denied' });
  }
}

describe('the phone app in Chromium', () => {
  const suite = chromiumSuite('app');

  it('loads /app/ with no console error or CSP violation, registers its module service worker for /app/, and has a manifest Chromium reads without errors', async () => {
    const page = await suite.openPage();
    const errors = await watchErrors(page);
    await page.goto(`${suite.server.url}/app/`);
    await page.getByRole('heading', { name: 'This app is not paired yet' }).waitFor();
    await page.getByRole('link', { name: 'I have a pairing code' }).waitFor();
    assert.deepEqual(await seriousViolations(page), []);
    const worker = await page.evaluate(async () => {
      // A worker that failed to register would leave `ready` waiting for ever: 5 s is plenty.
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no active service worker within 5 s')), 5000));
      const registration = await Promise.race([navigator.serviceWorker.ready, late]);
      return { scope: registration.scope, script: registration.active?.scriptURL };
    });
    assert.equal(worker.scope, `${suite.server.url}/app/`);
    assert.equal(worker.script, `${suite.server.url}/app/sw.js`);
    const cdp = await page.context().newCDPSession(page);
    const manifest = (await cdp.send('Page.getAppManifest')) as { url: string; errors: unknown[] };
    assert.equal(manifest.url, `${suite.server.url}/app/manifest.webmanifest`);
    assert.deepEqual(manifest.errors, []);
    await page.reload();
    await page.getByRole('heading', { name: 'This app is not paired yet' }).waitFor();
    assert.deepEqual(errors, []);
    assert.deepEqual(suite.violations, []);
  });

  it('makes a device key that cannot be exported, keeps it in IndexedDB, and signs requests the server\'s check accepts, and no tampered one', async () => {
    const page = await suite.openPage();
    const errors = await watchErrors(page);
    const seen: Request[] = [];
    await page.route('**/app/api/echo**', async (route) => {
      seen.push(route.request());
      await route.fulfill({ status: 200, contentType: 'application/json', body: '{}' });
    });
    await page.goto(`${suite.server.url}/app/`);
    const made = await page.evaluate(async (deviceJs) => {
      const device = await import(deviceJs);
      const created = await device.createDevice('Test phone');
      const exportable = await crypto.subtle.exportKey('jwk', created.privateKey).then(() => true, () => false);
      return { jwk: created.publicJwk, keyId: created.keyId, extractable: created.privateKey.extractable, exportable, usages: created.privateKey.usages };
    }, DEVICE_JS);
    assert.equal(made.extractable, false);
    assert.equal(made.exportable, false);
    assert.deepEqual(made.usages, ['sign']);
    assert.equal(made.keyId, thumbprint(made.jwk as DeviceJwk));
    assert.deepEqual(Object.keys(made.jwk).sort(), ['crv', 'kty', 'x', 'y']);

    // After a reload the key comes back from IndexedDB, still a non-extractable CryptoKey, and signs.
    await page.reload();
    const sent = await page.evaluate(async (deviceJs) => {
      const device = await import(deviceJs);
      const stored = await device.loadDevice();
      const post = await device.signedFetch('POST', '/app/api/echo?x=1&y=%C3%A4', { hello: 'wörld', n: 1 });
      const get = await device.signedFetch('GET', '/app/api/echo/prompts/a%2Fb');
      return { isKey: stored.privateKey instanceof CryptoKey, extractable: stored.privateKey.extractable, keyId: stored.keyId, statuses: [post.status, get.status] };
    }, DEVICE_JS);
    assert.deepEqual(sent, { isKey: true, extractable: false, keyId: made.keyId, statuses: [200, 200] });
    assert.equal(seen.length, 2);

    const jwk = made.jwk as DeviceJwk;
    for (const request of seen) {
      const { parts, keyId, signature } = partsOf(request);
      assert.equal(keyId, made.keyId);
      assert.match(parts.nonce, /^[A-Za-z0-9_-]{22,64}$/);
      assert.ok(Math.abs(Number(parts.time) - Date.now()) < 10_000, parts.time);
      assert.equal(verifyDeviceSignature(jwk, parts, signature), true, `${parts.method} ${parts.url}`);
      // Any one part changed, and the signature no longer holds.
      const tampered: Partial<SignedParts>[] = [
        { body: parts.body ? String(parts.body).replace('1', '2') : '{}' }, { url: `${parts.url}&z=1` }, { url: parts.url.replace('/app/api/', '/app/api//') },
        { method: parts.method === 'GET' ? 'POST' : 'GET' }, { time: String(Number(parts.time) + 1) }, { nonce: `${parts.nonce.slice(1)}A` },
      ];
      for (const change of tampered) assert.equal(verifyDeviceSignature(jwk, { ...parts, ...change }, signature), false, JSON.stringify(change));
      const otherKey = SoftwareDevice.create(suite.server.url).jwk;
      assert.equal(verifyDeviceSignature(otherKey, parts, signature), false, 'another key');
    }
    const post = partsOf(seen[0]!).parts;
    assert.equal(post.url, `${suite.server.url}/app/api/echo?x=1&y=%C3%A4`);
    assert.equal(seen[0]!.headers()['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(post.body as string), { hello: 'wörld', n: 1 });
    assert.equal(partsOf(seen[1]!).parts.body, '');
    assert.deepEqual(errors, []);
  });

  it('pairs with the code of a link, then answers the test prompt, a sign-in prompt (after a wrong number) and "This wasn\'t me", and signs out: every request signed', async () => {
    const page = await suite.openPage({ permissions: ['notifications'], viewport: { width: 360, height: 740 } });
    const errors = await watchErrors(page);
    const api = new StandInApi();
    await api.install(page.context(), suite.server.url);
    let logoReferer: string | undefined = 'not asked';
    await page.context().route(`${LOGO}**`, async (route) => {
      logoReferer = route.request().headers().referer;
      await route.fulfill({ status: 200, contentType: 'image/png', body: ICON });
    });

    await page.goto(`${suite.server.url}/app/pair#code=abcd efgh`);
    await page.getByRole('heading', { name: 'Pair this phone' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the code is taken out of the address');
    assert.equal(await page.getByLabel('Pairing code').inputValue(), 'abcd efgh');
    assert.equal(await page.getByLabel('Name of this phone').inputValue(), 'Chrome on Linux');
    assert.deepEqual(await seriousViolations(page), []);
    await page.getByLabel('Name of this phone').fill('My phone');
    await page.getByRole('button', { name: 'Pair this phone' }).click();

    await page.getByRole('heading', { name: 'Approve the test prompt to finish' }).waitFor();
    await page.getByText('paired without them').waitFor();
    assert.equal(await page.locator('.brand').textContent(), 'Acme Login');
    const paired = api.calls.find((c) => c.path === '/app/api/pair')!.body as Record<string, unknown>;
    assert.equal(paired.code, 'ABCD-EFGH');
    assert.equal(paired.name, 'My phone');
    assert.equal(paired.subscription, null);

    await page.getByRole('link', { name: 'Review' }).click();
    await page.getByRole('heading', { name: 'Test prompt' }).waitFor();
    // A pairing's test prompt asks for the number the account page shows.
    assert.equal(await page.getByLabel('Enter the number shown on the sign-in screen').count(), 0);
    await page.getByLabel('Enter the number shown on the account page').fill('321');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved. This phone will now get your sign-in prompts.').waitFor();
    assert.deepEqual(api.calls.at(-1), { method: 'POST', path: '/app/api/prompts/test-1/approve', body: { number: '321' } });

    api.prompts = [prompt('sign-in-1', 'sign-in', { client: { name: 'Notes', logoUrl: LOGO } })];
    api.approveAnswers.set('sign-in-1', [{ status: 400, json: { error: 'wrong_number', message: 'Wrong number.', attemptsLeft: 2 } }]);
    await page.getByRole('link', { name: 'Back to the app' }).click();
    await page.getByRole('heading', { name: 'My phone' }).waitFor();
    await page.getByText('Sign-in prompts show up while this app is open.').waitFor();
    await page.getByRole('button', { name: 'Turn on notifications' }).waitFor();
    await page.getByRole('link', { name: 'Review' }).click();
    await page.getByRole('heading', { name: 'Are you trying to sign in?' }).waitFor();
    for (const fact of ['Notes', 'Firefox 153 on Linux', '203.0.113.x · Germany']) await page.getByText(fact, { exact: true }).waitFor();
    const number = page.getByLabel('Enter the number shown on the sign-in screen');
    assert.deepEqual(await number.evaluate((el) => [el.getAttribute('inputmode'), el.getAttribute('autocomplete'), el.getAttribute('maxlength')]), ['numeric', 'off', '3']);
    await page.locator('img.client-logo').waitFor();
    assert.equal(logoReferer, undefined, 'the logo is fetched without a Referer');
    assert.deepEqual(await seriousViolations(page), []);

    await page.getByRole('button', { name: 'Approve' }).click();
    assert.equal(await page.getByRole('alert').textContent(), 'Enter the number shown on the sign-in screen.');
    await number.fill('999');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('alert').filter({ hasText: 'That is not the number on the sign-in screen. 2 attempts left.' }).waitFor();
    assert.equal(await number.inputValue(), '');
    await number.fill('123');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved. You can go back to your computer.').waitFor();
    assert.deepEqual(api.calls.at(-1), { method: 'POST', path: '/app/api/prompts/sign-in-1/approve', body: { number: '123' } });
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 360, 'no sideways scrolling at 360 px');

    // A prompt that expired while open: the server's answer, and no way to try again.
    api.prompts = [prompt('sign-in-2', 'sign-in'), prompt('sign-in-3', 'sign-in')];
    api.approveAnswers.set('sign-in-2', [{ status: 410, json: { error: 'expired', message: 'Expired.' } }]);
    await page.goto(`${suite.server.url}/app/prompt#sign-in-2`);
    await page.getByLabel('Enter the number shown on the sign-in screen').fill('123');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('heading', { name: 'This prompt can’t be answered' }).waitFor();
    await page.getByText('This prompt expired. Start the sign-in again on your computer.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0);

    await page.goto(`${suite.server.url}/app/prompt#sign-in-3`);
    await page.getByRole('button', { name: 'This wasn’t me' }).click();
    await page.getByText('The sign-in was blocked').waitFor();
    assert.deepEqual(api.calls.at(-1), { method: 'POST', path: '/app/api/prompts/sign-in-3/deny', body: { reason: 'not-me' } });

    await page.goto(`${suite.server.url}/app/prompt#gone`);
    await page.getByText('This prompt is no longer there').waitFor();

    await page.goto(`${suite.server.url}/app/`);
    await page.getByRole('button', { name: 'Sign out of this app' }).click();
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'This app is not paired yet' }).waitFor();
    await page.getByText('You signed out of this app.').waitFor();
    assert.equal(api.calls.at(-1)?.path, '/app/api/sign-out');
    assert.equal(await page.evaluate(async (deviceJs) => (await import(deviceJs)).loadDevice(), DEVICE_JS), null);

    assert.deepEqual(api.problems, []);
    assert.ok(api.calls.filter((c) => c.path !== '/app/api/config').length >= 10);
    assert.deepEqual(errors.filter((e) => !/status of 4\d\d/.test(e)), []);
    assert.deepEqual(suite.violations, []);
  });

  it('shows a notification for each push, the newest replacing the last, and one for a push it cannot read', async () => {
    const page = await suite.openPage({ permissions: ['notifications'] });
    await page.goto(`${suite.server.url}/app/`);
    await page.evaluate(() => Promise.race([navigator.serviceWorker.ready, new Promise((_, reject) => setTimeout(() => reject(new Error('no active service worker within 5 s')), 5000))]));
    const cdp = await page.context().newCDPSession(page);
    const registrations: { registrationId: string; scopeURL: string; isDeleted: boolean }[] = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    for (let i = 0; i < 50 && !registrations.some((r) => r.scopeURL === `${suite.server.url}/app/` && !r.isDeleted); i++) await page.waitForTimeout(20);
    const { registrationId } = registrations.find((r) => r.scopeURL === `${suite.server.url}/app/` && !r.isDeleted)!;
    const notifications = () => page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
      .map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data as unknown, requireInteraction: n.requireInteraction })));
    /** Delivers a push over DevTools; what is shown once the notification changed. */
    const shown = async (data: string) => {
      const before = JSON.stringify(await notifications());
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: suite.server.url, registrationId, data });
      for (let i = 0; i < 100; i++) {
        const now = await notifications();
        // A notification replacing another (the same tag) may leave none shown for a moment: wait for the new one.
        if (now.length && JSON.stringify(now) !== before) return now;
        await page.waitForTimeout(20);
      }
      return notifications();
    };
    const note = (title: string, body: string, prompt: string | null) => [{ title, body, tag: 'latchkey-prompt', data: { prompt }, requireInteraction: true }];
    assert.deepEqual(await shown(JSON.stringify({ type: 'test', prompt: 'p-1' })), note('Test prompt from Latchkey', 'Open to review and answer.', 'p-1'));
    assert.deepEqual(await shown(JSON.stringify({ type: 'prompt', prompt: 'p-2' })), note('Are you trying to sign in?', 'Open to review and answer.', 'p-2'));
    assert.deepEqual(await shown('{"type":"grant","prompt":7}'), note('Latchkey', 'Open Latchkey to check for prompts.', null));
  });

  it('speaks German to a browser that asks for it', async () => {
    const page = await suite.openPage({ locale: 'de-DE' });
    await page.goto(`${suite.server.url}/app/pair`);
    await page.getByRole('heading', { name: 'Dieses Telefon koppeln' }).waitFor();
    assert.equal(await page.getByLabel('Name dieses Telefons').inputValue(), 'Chrome auf Linux');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
    await page.getByRole('button', { name: 'Dieses Telefon koppeln' }).click();
    assert.equal(await page.getByRole('alert').textContent(), 'Geben Sie den Kopplungscode ein.');
    const keys = await page.evaluate(async (stringsJs) => {
      const { TEXTS } = await import(stringsJs);
      return Object.fromEntries(Object.entries(TEXTS).map(([language, texts]) => [language, Object.keys(texts as object).sort()]));
    }, STRINGS_JS);
    assert.deepEqual(keys.de, keys.en, 'every text in both languages');
  });
});

describe('the phone app in Firefox, with a push service of the test\'s own', () => {
  let server: TestServer;
  let push: PushService;
  let firefox: Firefox;
  before(async () => {
    server = await startTestServer();
    push = await PushService.start();
    firefox = await launchFirefox({ pushServerUrl: push.webSocketUrl });
  });
  after(async () => {
    await firefox?.close();
    await push?.stop();
    await server?.stop();
  });

  it('subscribes with a VAPID key, shows the notification of a real push, and a tap on it opens the prompt screen in the open window', async () => {
    const page = await firefox.browser.newPage();
    await page.goto(`${server.url}/app/`);
    await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'This app is not paired yet');
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, { timeout: 5000 });
    const vapid = webpush.generateVAPIDKeys();
    const subscribed = await page.evaluate(async (key, deviceJs, pushJs) => {
      const device = await import(deviceJs);
      await device.createDevice('Firefox on Linux');
      await device.updateDevice({ deviceId: 'device-1', state: 'active', vapidPublicKey: key });
      const { subscribe } = await import(pushJs);
      const registration = await navigator.serviceWorker.ready;
      const first = await subscribe(registration, key);
      const again = await subscribe(registration, key);
      return { subscription: first.toJSON(), kept: first.endpoint === again.endpoint, scope: registration.scope };
    }, vapid.publicKey, DEVICE_JS, PUSH_JS);
    assert.equal(subscribed.scope, `${server.url}/app/`);
    assert.equal(subscribed.kept, true, 'the same key keeps the subscription');
    const request = webpush.generateRequestDetails(subscribed.subscription as webpush.PushSubscription, JSON.stringify({ type: 'prompt', prompt: 'p-42' }), {
      vapidDetails: { subject: 'mailto:admin@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey }, TTL: 60, urgency: 'high',
    });
    const sent = await fetch(request.endpoint, { method: 'POST', headers: request.headers, body: new Uint8Array(request.body as Buffer) });
    assert.equal(sent.status, 201);
    assert.equal((await push.waitFor((p) => p.ack !== undefined)).ack, 100, 'delivered to the worker');
    await clickNotification(firefox, 'Open to review and answer.');
    await page.waitForFunction(() => location.pathname === '/app/prompt' && location.hash === '#p-42');
    await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'This prompt can’t be answered');
  });
});

describe('the software test device', () => {
  const origin = 'http://localhost:4000';

  it('signs what the server\'s check accepts, with the key id of its key', () => {
    const device = SoftwareDevice.create(origin);
    assert.equal(device.keyId, thumbprint(device.jwk));
    for (const [method, p, body] of [['POST', '/app/api/prompts/x/approve', { number: '123' }], ['GET', '/app/api/prompts?a=1', undefined]] as const) {
      const r = device.signRequest(method, p, body);
      const parts = { method, url: `${origin}${p}`, time: r.headers['Latchkey-Time']!, nonce: r.headers['Latchkey-Nonce']!, body: r.body };
      assert.equal(r.headers['Latchkey-Device'], device.keyId);
      assert.equal(verifyDeviceSignature(device.jwk, parts, r.headers['Latchkey-Signature']!), true);
    }
  });

  it('makes signatures that fail once tampered with: the body after signing, another key, another URL, time or nonce', () => {
    const device = SoftwareDevice.create(origin);
    const honest = device.signRequest('POST', '/app/api/prompts/x/approve', { number: '123' });
    const parts = { method: 'POST', url: `${origin}/app/api/prompts/x/approve`, time: honest.headers['Latchkey-Time']!, nonce: honest.headers['Latchkey-Nonce']!, body: honest.body };
    const checks: [string, ReturnType<SoftwareDevice['signRequest']>, Partial<SignedParts>][] = [
      ['body tampered after signing', device.signRequest('POST', '/app/api/prompts/x/approve', { number: '123' }, { tamperBody: '{"number":"124"}' }), {}],
      ['signed by another key', device.signRequest('POST', '/app/api/prompts/x/approve', { number: '123' }, { signWith: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }), {}],
      ['signed for another URL', device.signRequest('POST', '/app/api/prompts/x/approve', { number: '123' }, { signedUrl: `${origin}/app/api/prompts/y/approve` }), {}],
      ['signed for another method', device.signRequest('POST', '/app/api/prompts/x/approve', { number: '123' }, { signedMethod: 'GET' }), {}],
    ];
    for (const [what, r] of checks) {
      const sent = { ...parts, time: r.headers['Latchkey-Time']!, nonce: r.headers['Latchkey-Nonce']!, body: r.body };
      assert.equal(verifyDeviceSignature(device.jwk, sent, r.headers['Latchkey-Signature']!), false, what);
    }
    assert.equal(verifyDeviceSignature(device.jwk, { ...parts, time: String(Number(parts.time) - 1) }, honest.headers['Latchkey-Signature']!), false, 'another time');
    assert.equal(verifyDeviceSignature(device.jwk, { ...parts, nonce: device.signRequest('GET', '/').headers['Latchkey-Nonce']! }, honest.headers['Latchkey-Signature']!), false, 'another nonce');
    // The overrides a replay or a stale-time test needs are sent as given.
    const replay = device.signRequest('GET', '/app/api/prompts', undefined, { nonce: honest.headers['Latchkey-Nonce']!, time: 1 });
    assert.equal(replay.headers['Latchkey-Nonce'], honest.headers['Latchkey-Nonce']);
    assert.equal(replay.headers['Latchkey-Time'], '1');
  });
});
