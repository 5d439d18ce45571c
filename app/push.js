/**
 * The push subscription: made with the server's VAPID key, renewed when that key changes or the browser
 * drops it, and told to the server (POST /app/api/subscription). Shared by the page and the service
 * worker (its `pushsubscriptionchange`). A device whose browser cannot or may not show notifications has
 * no subscription: it gets its prompts while the app is open (home.js polls).
 */
import { sendSubscription } from './api.js';
import { forgetDevice, fromBase64url, updateDevice } from './device.js';

/** Whether this browser has what push needs at all (a service worker, PushManager, notifications). */
export const pushAvailable = () =>
  typeof self.PushManager === 'function' && typeof self.Notification === 'function' && 'serviceWorker' in navigator;

function sameKey(a, b) {
  if (!a || !b) return false;
  const x = new Uint8Array(a);
  return x.length === b.length && x.every((v, i) => v === b[i]);
}

/**
 * A subscription made with `vapidPublicKey` (base64url): the browser's current one when it was made with
 * that key, else a new one (the old one is dropped first: a browser keeps one subscription per worker).
 */
export async function subscribe(registration, vapidPublicKey, { fresh = false } = {}) {
  const key = fromBase64url(vapidPublicKey);
  const existing = await registration.pushManager.getSubscription();
  if (existing && !fresh && sameKey(existing.options.applicationServerKey, key)) return existing;
  if (existing) await existing.unsubscribe();
  return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
}

/** Drops the browser's subscription, if any. */
export async function unsubscribe(registration) {
  const existing = await registration?.pushManager?.getSubscription();
  if (existing) await existing.unsubscribe();
}

/**
 * Subscribes again with `vapidPublicKey` and tells the server; records the key on the device. Used when
 * the server's key changed, when the browser lost the subscription, and when notifications are turned on.
 */
export async function renewSubscription(registration, vapidPublicKey, options) {
  const subscription = await subscribe(registration, vapidPublicKey, options);
  await sendSubscription(subscription.toJSON());
  return updateDevice({ vapidPublicKey });
}

/**
 * After GET /app/api/prompts (the device's state and the server's VAPID key): renews the subscription when
 * the device has one and it was made with another key, when the browser no longer has it, or when the
 * server dropped it (state `open-app`: its push service answered 404 or 410). Never asks for permission.
 */
export async function keepSubscription(registration, device, vapidPublicKey) {
  if (!registration || !device?.vapidPublicKey || !vapidPublicKey || Notification.permission !== 'granted') return device;
  const current = await registration.pushManager.getSubscription();
  const dropped = device.state === 'open-app';
  if (device.vapidPublicKey === vapidPublicKey && current && !dropped) return device;
  return renewSubscription(registration, vapidPublicKey, { fresh: dropped });
}

/** Deletes the key and drops the subscription: this app is no longer paired. */
export async function forgetLocally(registration) {
  await unsubscribe(registration).catch(() => {});
  await forgetDevice();
}
