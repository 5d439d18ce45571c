/**
 * What the audit log may keep of an object's state before and after an action: everything but secrets.
 *
 * A field whose name is on the deny-list below (compared without case, `_` or `-`: `client_secret`,
 * `clientSecret` and `Client-Secret` are one name) keeps its name and loses its value, at any depth. A string
 * that is a secret by its look (a password hash, a PEM private key) goes the same way wherever it is. The
 * rest becomes plain JSON: dates as ISO text, no undefined, bounded in depth, length and size, and only
 * characters PostgreSQL stores (no NUL, no lone surrogate).
 */
import type { JsonValue } from './chain.ts';

export const REDACTED = '[redacted]';

/** Field names whose values never reach the log. Normalised: lowercase, no `_` or `-`. */
export const DENIED_FIELDS: ReadonlySet<string> = new Set([
  // passwords and what is derived from them
  'password', 'passwordhash', 'newpassword', 'currentpassword', 'oldpassword', 'passphrase',
  // client secrets, sealed or not
  'secret', 'clientsecret', 'secretsealed', 'sealedsecret', 'secrethash',
  // tokens and codes
  'token', 'accesstoken', 'refreshtoken', 'idtoken', 'registrationaccesstoken', 'setuptoken', 'logouttoken',
  'code', 'codehash', 'otp', 'recoverycode', 'recoverycodes', 'userCode', 'devicecode',
  // TOTP seeds and other shared keys
  'seed', 'totpseed', 'seedsealed', 'totpsecret', 'sharedsecret',
  // private keys (a JWK's private members included)
  'privatekey', 'privatesealed', 'privatejwk', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth',
  // security answers
  'answer', 'answerhash', 'securityanswer',
  // what a browser or a push service holds as a credential
  'cookie', 'cookies', 'authorization', 'apikey', 'auth', 'p256dh', 'vapidprivatekey',
  // links that carry a single-use token (a reset, an invitation, a setup link)
  'link', 'url', 'resetlink', 'invitelink', 'setuplink',
  // Latchkey's own keys
  'encryptionkey', 'cookiekeys', 'webhooksecret', 'authtoken',
].map(normalise));

const SECRET_LOOKING = [/^\$argon2(id|i|d)\$/, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, /[?&]token=[A-Za-z0-9_-]{20,}/];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const MAX_DEPTH = 8;
const MAX_ITEMS = 200;
const MAX_STRING = 2000;

function normalise(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

export function isDeniedField(name: string): boolean {
  return DENIED_FIELDS.has(normalise(name));
}

/** Text PostgreSQL can store, at most `max` characters: no NUL, no lone surrogate. */
export function storableText(value: string, max = MAX_STRING): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return cut.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\uFFFD');
}

/** The redacted, JSON-only copy of a value; undefined becomes null. */
export function redact(value: unknown): JsonValue {
  return copy(value, 0) ?? null;
}

function copy(value: unknown, depth: number): JsonValue | undefined {
  if (value === null) return null;
  switch (typeof value) {
    case 'string':
      return SECRET_LOOKING.some((re) => re.test(value)) ? REDACTED : storableText(value);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return '[binary]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((v) => copy(v, depth + 1) ?? null);
  const out: Record<string, JsonValue> = {};
  let items = 0;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (items++ >= MAX_ITEMS) break;
    const name = storableText(key, 200);
    if (isDeniedField(key)) {
      if (v !== undefined) out[name] = REDACTED;
      continue;
    }
    const c = copy(v, depth + 1);
    if (c !== undefined) out[name] = c;
  }
  return out;
}
