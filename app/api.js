/**
 * The server's endpoints under /app/api/ (docs/mobile-app-protocol.md, "Endpoints"), one function each.
 * Every call but `getConfig` is signed by the device key (device.js). A refusal becomes an ApiError with
 * the server's stable `error` code, its message and the rest of its JSON (`attemptsLeft`), which the
 * screens turn into their own words (strings.js); a failed connection is the code `network`.
 */
import { signedFetch } from './device.js';

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    /** The server's own words (English), for a code the app has none for. */
    this.serverMessage = message || '';
  }
}

/** The JSON of a response, or an ApiError for anything but 2xx. */
async function jsonOf(response) {
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok) return json ?? {};
  const code = typeof json?.error === 'string' ? json.error : `http_${response.status}`;
  throw new ApiError(response.status, code, typeof json?.message === 'string' ? json.message : '', json ?? {});
}

async function call(method, path, body, device) {
  let response;
  try {
    response = await signedFetch(method, path, body, device);
  } catch (err) {
    throw new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
  }
  return jsonOf(response);
}

const promptPath = (id) => `/app/api/prompts/${encodeURIComponent(id)}`;

/** `{ vapidPublicKey, productName }`; not signed. */
export async function getConfig() {
  let response;
  try {
    response = await fetch(new URL('/app/api/config', self.location.origin).href, { credentials: 'omit', cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch (err) {
    throw new ApiError(0, 'network', err instanceof Error ? err.message : String(err));
  }
  return jsonOf(response);
}

/** Pairs the new key `device` with the account of `code`: `{ device: { id, name, state } }`. */
export const pair = (device, code, subscription) =>
  call('POST', '/app/api/pair', { code, publicKey: device.publicJwk, name: device.name, subscription }, device);

/** `{ device, vapidPublicKey, prompts }`: the prompts waiting for this device's user. */
export const listPrompts = () => call('GET', '/app/api/prompts');

export const getPrompt = (id) => call('GET', promptPath(id));

/** Approves a prompt; `number` only for a sign-in prompt. */
export const approvePrompt = (id, number) => call('POST', `${promptPath(id)}/approve`, number === undefined ? {} : { number });

/** Denies a prompt: `reason` is "cancel" or "not-me". */
export const denyPrompt = (id, reason) => call('POST', `${promptPath(id)}/deny`, { reason });

/** Tells the server this device's push subscription (or null: none any more). */
export const sendSubscription = (subscription) => call('POST', '/app/api/subscription', { subscription });

export const signOut = () => call('POST', '/app/api/sign-out', {});
