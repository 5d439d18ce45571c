/**
 * The app's request signatures (docs/mobile-app-protocol.md, "Signed requests"): the text a device key
 * signs, the key id (RFC 7638 thumbprint), and the check of one signature. Pure functions: the nonce and
 * time rules, which need the store, are device-auth.ts's.
 */
import { createHash, createPublicKey, verify as verifySignature, type JsonWebKey, type KeyObject } from 'node:crypto';

export const SIGNATURE_VERSION = 'latchkey-device-v1';
export const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** A P-256 public key as the app sends it: only the members a public EC key has. */
export interface DeviceJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** The JWK the app sent, when it is a P-256 public key (never a private one: `d` is refused). */
export function deviceJwk(value: unknown): DeviceJwk | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const jwk = value as Record<string, unknown>;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || 'd' in jwk) return undefined;
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string' || jwk.x.length !== 43 || jwk.y.length !== 43) return undefined;
  if (!B64URL.test(jwk.x) || !B64URL.test(jwk.y)) return undefined;
  const out: DeviceJwk = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
  try {
    createPublicKey({ key: out as JsonWebKey, format: 'jwk' }); // a point on the curve
  } catch {
    return undefined;
  }
  return out;
}

/** RFC 7638: SHA-256 over the required members in lexicographic order, base64url. */
export const thumbprint = (jwk: DeviceJwk): string =>
  createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');

export const bodyHash = (body: Uint8Array | string): string => createHash('sha256').update(body).digest('base64url');

export interface SignedParts {
  method: string;
  /** The absolute URL: the issuer's origin, then the path and query as sent. */
  url: string;
  time: string;
  nonce: string;
  body: Uint8Array | string;
}

export const signedText = (p: SignedParts): string =>
  [SIGNATURE_VERSION, p.method.toUpperCase(), p.url, p.time, p.nonce, bodyHash(p.body)].join('\n');

/** Whether `signature` (base64url, raw r‖s as WebCrypto makes it) signs these parts with this key. */
export function verifyDeviceSignature(key: DeviceJwk | KeyObject, parts: SignedParts, signature: string): boolean {
  if (!B64URL.test(signature) || signature.length !== 86) return false;
  const publicKey = 'kty' in key ? createPublicKey({ key: key as JsonWebKey, format: 'jwk' }) : key;
  return verifySignature('sha256', Buffer.from(signedText(parts)), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
}
