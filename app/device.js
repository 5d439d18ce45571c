/**
 * This phone's device key, and the signed requests of docs/mobile-app-protocol.md ("Signed requests").
 * Shared by the page (app.js) and the service worker (sw.js), so both sign the same way.
 *
 * The key is a WebCrypto ECDSA P-256 key made with `extractable: false` and kept as a CryptoKey in
 * IndexedDB (database `latchkey`, store `device`, key `current`): it signs, and never leaves the browser.
 * Next to it: the public JWK, the key id (RFC 7638 thumbprint), the device's id and name once paired, and
 * the VAPID key the push subscription was made with (null when the device has none).
 */

const DB_NAME = 'latchkey';
const STORE = 'device';
const CURRENT = 'current';
export const SIGNATURE_VERSION = 'latchkey-device-v1';
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' };
const encoder = new TextEncoder();

/** Bytes (an ArrayBuffer or a view) as base64url without padding. */
export function base64url(bytes) {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes instanceof ArrayBuffer ? bytes : bytes.buffer);
  let binary = '';
  for (const b of view) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** base64url (padded or not) as bytes. */
export function fromBase64url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

/** 16 random bytes as base64url: 22 characters, within the protocol's 16 to 64. */
export const newNonce = () => base64url(crypto.getRandomValues(new Uint8Array(16)));

/** RFC 7638: SHA-256 of the required members in lexicographic order, base64url (as the server's thumbprint). */
export async function thumbprint(jwk) {
  const json = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return base64url(await sha256(encoder.encode(json)));
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Runs `use(store)` in one transaction; resolves with what it returned once the transaction committed. */
async function inStore(mode, use) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = use(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.value);
      tx.onerror = tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** The stored device (see the top of this file), or null when this app holds no key. */
export function loadDevice() {
  return inStore('readonly', (store) => {
    const result = { value: null };
    const request = store.get(CURRENT);
    request.onsuccess = () => (result.value = request.result ?? null);
    return result;
  });
}

/** Changes some of the stored device's fields in one transaction; the device as it is then (null if none). */
export function updateDevice(changes) {
  return inStore('readwrite', (store) => {
    const result = { value: null };
    const request = store.get(CURRENT);
    request.onsuccess = () => {
      if (!request.result) return;
      result.value = { ...request.result, ...changes };
      store.put(result.value, CURRENT);
    };
    return result;
  });
}

/** Deletes the key: this app can sign nothing more. */
export const forgetDevice = () => inStore('readwrite', (store) => (store.delete(CURRENT), { value: undefined }));

/**
 * Makes a new key and stores it as the current device, replacing any other (a device not yet paired has
 * `deviceId: null`).
 */
export async function createDevice(name) {
  const pair = await crypto.subtle.generateKey(ECDSA, false, ['sign', 'verify']);
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const publicJwk = { kty, crv, x, y };
  const device = {
    privateKey: pair.privateKey,
    publicJwk,
    keyId: await thumbprint(publicJwk),
    deviceId: null,
    name,
    state: null,
    vapidPublicKey: null,
    productName: null,
  };
  await inStore('readwrite', (store) => (store.put(device, CURRENT), { value: undefined }));
  return device;
}

/** The protocol's signed text: version, method, absolute URL, time, nonce, and the body's SHA-256. */
export async function signedText({ method, url, time, nonce, body }) {
  const bodyHash = base64url(await sha256(encoder.encode(body)));
  return [SIGNATURE_VERSION, method.toUpperCase(), url, time, nonce, bodyHash].join('\n');
}

/** The four `Latchkey-*` headers for one request of `device`, signed now with a fresh nonce. */
export async function signatureHeaders(device, method, url, body) {
  const time = String(Date.now());
  const nonce = newNonce();
  const text = await signedText({ method, url, time, nonce, body });
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, device.privateKey, encoder.encode(text));
  return {
    'Latchkey-Device': device.keyId,
    'Latchkey-Time': time,
    'Latchkey-Nonce': nonce,
    'Latchkey-Signature': base64url(signature),
  };
}

/**
 * A request under /app/api/ signed by the device key (the stored one unless `device` is given): `body`
 * is sent as JSON, or no body when undefined. The URL signed is the one fetched, `location.origin` + path.
 * Resolves with the Response, like fetch.
 */
export async function signedFetch(method, path, body, device) {
  const key = device ?? (await loadDevice());
  if (!key) throw new Error('no device key');
  const url = new URL(path, self.location.origin).href;
  const text = body === undefined ? '' : JSON.stringify(body);
  const headers = await signatureHeaders(key, method, url, text);
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  headers.Accept = 'application/json';
  return fetch(url, { method, headers, body: body === undefined ? undefined : text, credentials: 'omit', cache: 'no-store' });
}
