/**
 * The local push service and the Firefox phone, proved together: what an application server sends with
 * `web-push` is checked (VAPID), decrypted, refused or delivered as a real push service would, and a real
 * Firefox subscribed to it receives the push in its service worker.
 */
import assert from 'node:assert/strict';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import webpush, { type PushSubscription, type VapidKeys } from 'web-push';
import type { Page } from 'puppeteer-core';
import { WebSocket } from 'ws';
import { clickNotification, launchFirefox, type Firefox } from './firefox.ts';
import { PushService, type SoftwareSubscription } from './push-service.ts';

const SUBJECT = 'mailto:security@latchkey.test';

/** Sends a request made by web-push with fetch; `replace` swaps some of its headers (names in lower case) for others. */
function send(details: webpush.RequestDetails, replace: Record<string, string | undefined> = {}): Promise<Response> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(details.headers)) headers.set(name, String(value));
  for (const [name, value] of Object.entries(replace)) {
    if (value === undefined) headers.delete(name);
    else headers.set(name, value);
  }
  return fetch(details.endpoint, { method: details.method, headers, body: details.body ? Uint8Array.from(details.body) : null });
}

/** Sends `text` the way an application server does: web-push's request (aes128gcm, VAPID, TTL 60, high urgency). */
function sendPush(subscription: PushSubscription, text: string, vapid: VapidKeys, replace: Record<string, string | undefined> = {}): Promise<Response> {
  const details = webpush.generateRequestDetails(subscription, text, {
    vapidDetails: { subject: SUBJECT, ...vapid },
    TTL: 60,
    urgency: 'high',
    contentEncoding: 'aes128gcm',
  });
  return send(details, replace);
}

/** A VAPID header with any claims, signed by `signer` (by default the key it names). */
function vapidHeader(keys: VapidKeys, claims: Record<string, unknown>, signer: VapidKeys = keys): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ typ: 'JWT', alg: 'ES256' })}.${part(claims)}`;
  const point = Buffer.from(signer.publicKey, 'base64url');
  const key = createPrivateKey({
    key: { kty: 'EC', crv: 'P-256', d: signer.privateKey, x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `vapid t=${input}.${signature}, k=${keys.publicKey}`;
}

const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600;

describe('the local push service', () => {
  let push: PushService;
  const vapid = webpush.generateVAPIDKeys();
  before(async () => {
    push = await PushService.start();
  });
  after(() => push.stop());

  /** Sends one forged request and expects it refused with `status`, and nothing delivered to `subscription`. */
  async function expectRefused(subscription: SoftwareSubscription, authorization: string, status: number, why: RegExp): Promise<void> {
    const res = await sendPush(subscription, 'should not arrive', vapid, { authorization });
    assert.equal(res.status, status, await res.text());
    const record = push.received.at(-1)!;
    assert.equal(record.id, subscription.id);
    assert.equal(record.status, status);
    assert.match(record.refused ?? '', why);
    assert.ok(push.received.every((p) => p.id !== subscription.id || p.plaintext === undefined), 'nothing was delivered');
  }

  test('refuses a JWT for another audience', async () => {
    const subscription = push.subscribe();
    await expectRefused(subscription, vapidHeader(vapid, { aud: 'https://push.example.net', exp: inAnHour(), sub: SUBJECT }), 401, /aud/);
  });

  test('refuses a JWT that expires more than 24 hours ahead', async () => {
    const subscription = push.subscribe();
    const exp = Math.floor(Date.now() / 1000) + 25 * 3600;
    await expectRefused(subscription, vapidHeader(vapid, { aud: push.origin, exp, sub: SUBJECT }), 401, /24 h/);
    assert.equal(push.received.at(-1)!.vapid?.exp, exp);
  });

  test('refuses a JWT that is not signed by the key it names', async () => {
    const subscription = push.subscribe();
    const other = webpush.generateVAPIDKeys();
    await expectRefused(subscription, vapidHeader(vapid, { aud: push.origin, exp: inAnHour(), sub: SUBJECT }, other), 401, /signature/);
  });

  test('refuses a JWT without sub', async () => {
    const subscription = push.subscribe();
    await expectRefused(subscription, vapidHeader(vapid, { aud: push.origin, exp: inAnHour() }), 401, /sub/);
  });

  test('refuses a well-signed push from another key than the subscription\'s applicationServerKey (403)', async () => {
    const subscription = push.subscribe({ applicationServerKey: webpush.generateVAPIDKeys().publicKey });
    await expectRefused(subscription, vapidHeader(vapid, { aud: push.origin, exp: inAnHour(), sub: SUBJECT }), 403, /applicationServerKey/);
  });

  test('refuses a push without TTL, or in the old aesgcm encoding (400)', async () => {
    const subscription = push.subscribe();
    assert.equal((await sendPush(subscription, 'x', vapid, { ttl: undefined })).status, 400);
    assert.equal((await sendPush(subscription, 'x', vapid, { 'content-encoding': 'aesgcm' })).status, 400);
    assert.ok(push.received.every((p) => p.id !== subscription.id || (p.status === 400 && p.plaintext === undefined)));
  });

  test('answers 404 for an unknown subscription and 410 for one that is gone', async () => {
    const unknown = { ...push.subscribe(), endpoint: push.endpoint('nobody-subscribed-this') };
    assert.equal((await sendPush(unknown, 'hi', vapid)).status, 404);
    const subscription = push.subscribe();
    assert.equal((await sendPush(subscription, 'before', vapid)).status, 201);
    push.markGone(subscription.id);
    assert.equal((await sendPush(subscription, 'after', vapid)).status, 410);
    assert.deepEqual(push.received.filter((p) => p.id === subscription.id).map((p) => [p.status, p.plaintext]), [[201, 'before'], [410, undefined]]);
  });

  test('delivers a web-push message to a software subscription: 201, decrypted, VAPID checked', async () => {
    const subscription = push.subscribe({ applicationServerKey: vapid.publicKey });
    const text = JSON.stringify({ title: 'Sign-in request', body: 'Is this you signing in? ✓' });
    const res = await sendPush(subscription, text, vapid);
    assert.equal(res.status, 201);
    assert.match(res.headers.get('location') ?? '', new RegExp(`^${push.origin}/m/`));
    const record = await push.waitFor((p) => p.id === subscription.id);
    assert.equal(record.plaintext, text);
    assert.equal(record.ttl, 60);
    assert.equal(record.urgency, 'high');
    assert.equal(record.encoding, 'aes128gcm');
    assert.equal(record.vapid?.aud, push.origin);
    assert.equal(record.vapid?.sub, SUBJECT);
    assert.equal(record.vapid?.k, vapid.publicKey);
    const exp = record.vapid?.exp as number;
    assert.ok(exp > Date.now() / 1000 && exp <= Date.now() / 1000 + 24 * 3600);
  });

  test('waitFor says what did arrive when the push it waits for does not', async () => {
    const subscription = push.subscribe();
    await sendPush(subscription, 'hello', vapid);
    await assert.rejects(push.waitFor((p) => p.id === 'never', 50), new RegExp(`no matching push within 50 ms; received: .*201 ${subscription.id}`));
  });

  test('keeps a push for a browser that is away until it says hello again, within TTL, and records its ack', async () => {
    const away = await pushSocket(push.webSocketUrl);
    const { uaid } = await away.request({ messageType: 'hello', use_webpush: true, broadcasts: {} });
    assert.equal(typeof uaid, 'string');
    // Firefox sends the applicationServerKey padded.
    const registered = await away.request({ messageType: 'register', channelID: randomUUID(), key: `${vapid.publicKey}=` });
    assert.equal(registered.status, 200);
    away.socket.close();
    const browserKeys = push.subscribe().keys; // any keys: the service only forwards a browser's pushes
    const subscription = { endpoint: String(registered.pushEndpoint), keys: browserKeys };
    assert.equal((await sendPush(subscription, 'now or never', vapid, { ttl: '0' })).status, 201);
    assert.equal((await sendPush(subscription, 'kept', vapid)).status, 201);
    const kept = push.received.at(-1)!;

    const back = await pushSocket(push.webSocketUrl);
    assert.equal((await back.request({ messageType: 'hello', uaid, use_webpush: true })).uaid, uaid);
    const notification = await back.next('notification');
    assert.equal(notification.channelID, registered.channelID);
    assert.equal(notification.version, kept.version);
    assert.deepEqual(notification.headers, { encoding: 'aes128gcm' });
    assert.ok(typeof notification.data === 'string' && notification.data.length > 0);
    back.socket.send(JSON.stringify({ messageType: 'ack', updates: [{ channelID: registered.channelID, version: notification.version, code: 100 }] }));
    assert.equal((await push.waitFor((p) => p === kept && p.ack !== undefined)).ack, 100);
    assert.equal(back.messages.filter((m) => m.messageType === 'notification').length, 1, 'the TTL 0 push was dropped');
    back.socket.close();
  });
});

/** A client of Mozilla's WebSocket push protocol, as Firefox is one: `request` sends a message and waits for the answer of its type. */
async function pushSocket(url: string) {
  const socket = new WebSocket(url, 'push-notification');
  const messages: Record<string, unknown>[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data)) as Record<string, unknown>));
  await once(socket, 'open');
  const next = async (type: string, from = 0): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 200; i++) {
      const found = messages.slice(from).find((m) => m.messageType === type);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${type} message; got ${JSON.stringify(messages)}`);
  };
  return {
    socket,
    messages,
    next,
    request(message: Record<string, unknown>) {
      const from = messages.length;
      socket.send(JSON.stringify(message));
      return next(String(message.messageType), from);
    },
  };
}

/** The page and service worker of the app the phone subscribes from. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>push test</title>
<script>
  window.fromWorker = [];
  navigator.serviceWorker.addEventListener('message', (e) => window.fromWorker.push(e.data));
</script>`;

const WORKER = `
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function tell(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true, type: 'window' })) client.postMessage(message);
}

self.addEventListener('push', (event) => {
  const text = event.data ? event.data.text() : '';
  event.waitUntil((async () => {
    await self.registration.showNotification('Sign-in request', { body: text, tag: 'sign-in', data: { text } });
    await tell({ type: 'push', text });
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(tell({ type: 'click', text: event.notification.data.text, trusted: event.isTrusted }));
});
`;

/** The page's record of what its service worker told it, in order. */
interface PageWindow { fromWorker: { type: string; text: string; trusted?: boolean }[] }

function waitForWorker(page: Page, type: string): Promise<unknown> {
  return page.waitForFunction((t: string) => (window as unknown as PageWindow).fromWorker.some((m) => m.type === t), { timeout: 10_000 }, type);
}

describe('a real Firefox receives a push', () => {
  let push: PushService;
  let firefox: Firefox;
  let site: http.Server;
  let origin: string;
  before(async () => {
    push = await PushService.start();
    site = http.createServer((req, res) => {
      if (req.url === '/sw.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(WORKER);
      else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    firefox = await launchFirefox({ pushServerUrl: push.webSocketUrl });
  });
  after(async () => {
    await firefox?.close();
    site?.closeAllConnections();
    await new Promise((resolve) => site?.close(resolve));
    await push.stop();
  });

  test('its service worker gets the decrypted text and shows a notification, and a click on it reaches the worker', async () => {
    const vapid = webpush.generateVAPIDKeys();
    const page = await firefox.browser.newPage();
    await page.goto(`${origin}/`);
    const subscription = await page.evaluate(async (applicationServerKey: string) => {
      const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
      await navigator.serviceWorker.ready;
      const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey });
      return sub.toJSON();
    }, vapid.publicKey) as PushSubscription;
    assert.match(subscription.endpoint, new RegExp(`^${push.origin}/push/`));

    const text = 'Is this you signing in from Firefox?';
    const res = await sendPush(subscription, text, vapid);
    assert.equal(res.status, 201);
    const id = subscription.endpoint.split('/').at(-1)!;
    const record = await push.waitFor((p) => p.id === id && p.ack !== undefined, 10_000);
    assert.equal(record.ack, 100, 'Firefox acked the message as delivered');
    assert.equal(record.vapid?.k, vapid.publicKey);

    await waitForWorker(page, 'push');
    const shown = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications({ tag: 'sign-in' })).map((n) => n.body));
    assert.deepEqual(shown, [text]);

    await clickNotification(firefox, text);
    await waitForWorker(page, 'click');
    assert.deepEqual(await page.evaluate(() => (window as unknown as PageWindow).fromWorker), [{ type: 'push', text }, { type: 'click', text, trusted: true }]);
    const left = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).length);
    assert.equal(left, 0, 'the click handler closed the notification');
  });
});
