/**
 * The app's service worker (a module worker, scope /app/). A push message names a prompt and grants
 * nothing (docs/mobile-app-protocol.md, "Push messages"): the worker fetches the prompt over the signed
 * API and shows a notification with who asks, from where and when (never the number), and a
 * tap opens the prompt screen, where the app fetches the prompt over the signed API. When the browser
 * renews the push subscription, the worker tells the server, signing with the same device key (device.js).
 */
import { getConfig, getPrompt } from './api.js';
import { loadDevice } from './device.js';
import { renewSubscription } from './push.js';
import { t } from './strings.js';

/** One tag for every prompt: a new prompt's notification replaces the last one. */
const TAG = 'latchkey-prompt';
const ICON = '/app/icons/icon-192.png';

/** The push message's JSON, `{ type: "prompt" | "test", prompt: "<id>" }`, or null. */
function readMessage(event) {
  try {
    const message = event.data?.json();
    return message && typeof message.prompt === 'string' && (message.type === 'prompt' || message.type === 'test') ? message : null;
  } catch {
    return null;
  }
}

const appWindows = () => self.clients.matchAll({ type: 'window', includeUncontrolled: true })
  .then((list) => list.filter((c) => new URL(c.url).pathname.startsWith('/app/')));

/**
 * What the notification says about a prompt: the app that asks, the browser and system, the approximate
 * place and the time, fetched over the signed API (never in the push itself, and never the number). Within
 * a few seconds, or nothing (the notification then only says to open it).
 */
async function detailsOf(id) {
  try {
    const p = await Promise.race([getPrompt(id), new Promise((_, reject) => setTimeout(() => reject(new Error('slow')), 3000))]);
    const place = [p.place?.ip, p.place?.country].filter(Boolean).join(', ');
    const time = new Date(p.createdAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return [p.client?.name, [p.browser, p.os].filter(Boolean).join(' · '), place, time].filter(Boolean).join(' · ');
  } catch {
    return '';
  }
}

async function onPush(event) {
  const message = readMessage(event);
  const title = message?.type === 'test' ? t('notifyTest') : t('notifySignIn');
  const details = message ? await detailsOf(message.prompt) : '';
  // userVisibleOnly: every push shows a notification, even one the worker cannot read.
  await self.registration.showNotification(message ? title : t('title'), {
    body: message ? [details, t('notifyBody')].filter(Boolean).join('\n') : t('notifyUnknown'),
    tag: TAG,
    renotify: true,
    requireInteraction: true,
    icon: ICON,
    data: { prompt: message?.prompt ?? null },
  });
  for (const client of await appWindows()) client.postMessage({ type: 'push' });
}

async function onNotificationClick(event) {
  event.notification.close();
  const id = event.notification.data?.prompt;
  const url = id ? `/app/prompt#${encodeURIComponent(id)}` : '/app/';
  const [open] = await appWindows();
  if (open) {
    open.postMessage({ type: 'open', url });
    await open.focus().catch(() => {}); // a browser may refuse; the window still shows the prompt
    return;
  }
  await self.clients.openWindow(url);
}

/** The browser renewed (or dropped) the subscription: subscribe again with the server's key and say so. */
async function onSubscriptionChange() {
  const device = await loadDevice();
  if (!device?.deviceId || !device.vapidPublicKey) return;
  const { vapidPublicKey } = await getConfig();
  if (vapidPublicKey) await renewSubscription(self.registration, vapidPublicKey);
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('push', (event) => event.waitUntil(onPush(event)));
self.addEventListener('notificationclick', (event) => event.waitUntil(onNotificationClick(event)));
self.addEventListener('pushsubscriptionchange', (event) => event.waitUntil(onSubscriptionChange()));
