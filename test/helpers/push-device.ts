/**
 * A software phone for HTTP tests of /app/api/: a P-256 key pair made with node:crypto that signs its
 * requests exactly as docs/mobile-app-protocol.md says (the signed text from src/push/device-signature.ts,
 * raw r‖s signatures), so a test can pair, poll and answer prompts without a browser. `overrides` bend one
 * request for attack tests: another time, a reused nonce, another key, another URL or method in the
 * signature, a body changed after signing, or a header left out.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { signedText, thumbprint, type DeviceJwk } from '../../src/push/device-signature.ts';

export interface DeviceResponse<T = Record<string, unknown>> {
  status: number;
  json: T;
  headers: Headers;
}

/** What one request may do differently from an honest device. */
export interface RequestOverrides {
  /** `Latchkey-Time` (Unix ms); default now. */
  time?: number | string;
  /** `Latchkey-Nonce`; default 16 fresh random bytes. */
  nonce?: string;
  /** Sign with this private key instead of the device's (the `Latchkey-Device` header stays the device's). */
  signWith?: KeyObject;
  /** `Latchkey-Device` sent instead of the device's key id. */
  keyId?: string;
  /** The method and URL put into the signed text (the request itself goes to `path` with `method`). */
  signedMethod?: string;
  signedUrl?: string;
  /** The body's text as sent, after the signature was made over the honest one. */
  tamperBody?: string;
  /** A signature sent instead of the real one. */
  signature?: string;
  /** Headers left out of the request. */
  omit?: readonly ('Latchkey-Device' | 'Latchkey-Time' | 'Latchkey-Nonce' | 'Latchkey-Signature')[];
  /** Extra headers (`Content-Type` for instance). */
  headers?: Record<string, string>;
}

/** The parts of one signed request, for tests that check signatures without a server. */
export interface SignedRequest {
  method: string;
  url: string;
  body: string;
  headers: Record<string, string>;
}

export class SoftwareDevice {
  readonly jwk: DeviceJwk;
  readonly keyId: string;
  /** Every nonce this device signed with, in order (a replay test reuses one). */
  readonly nonces: string[] = [];

  private constructor(
    readonly serverUrl: string,
    readonly privateKey: KeyObject,
    publicKey: KeyObject,
  ) {
    const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
    this.jwk = { kty: kty as 'EC', crv: crv as 'P-256', x: x!, y: y! };
    this.keyId = thumbprint(this.jwk);
  }

  /** A new device with a fresh key, talking to the server at `serverUrl` (its issuer's origin). */
  static create(serverUrl: string): SoftwareDevice {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new SoftwareDevice(new URL(serverUrl).origin, privateKey, publicKey);
  }

  /** The headers and body of a request, signed now (or as `overrides` say), without sending it. */
  signRequest(method: string, path: string, body?: unknown, overrides: RequestOverrides = {}): SignedRequest {
    const url = `${this.serverUrl}${path}`;
    const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const time = String(overrides.time ?? Date.now());
    const nonce = overrides.nonce ?? randomBytes(16).toString('base64url');
    this.nonces.push(nonce);
    const signed = signedText({ method: overrides.signedMethod ?? method, url: overrides.signedUrl ?? url, time, nonce, body: text });
    const signature = overrides.signature
      ?? sign('sha256', Buffer.from(signed), { key: overrides.signWith ?? this.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    const headers: Record<string, string> = {
      'Latchkey-Device': overrides.keyId ?? this.keyId,
      'Latchkey-Time': time,
      'Latchkey-Nonce': nonce,
      'Latchkey-Signature': signature,
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...overrides.headers,
    };
    for (const name of overrides.omit ?? []) delete headers[name];
    return { method, url, body: overrides.tamperBody ?? text, headers };
  }

  /** Sends a signed request to `path` (with its query); `body` is sent as JSON (a string as it is). */
  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, overrides: RequestOverrides = {}): Promise<DeviceResponse<T>> {
    const r = this.signRequest(method, path, body, overrides);
    const res = await fetch(r.url, { method, headers: r.headers, body: body === undefined && overrides.tamperBody === undefined ? undefined : r.body, redirect: 'manual' });
    const text = await res.text();
    let json: unknown = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { text };
    }
    return { status: res.status, json: json as T, headers: res.headers };
  }

  /** POST /app/api/pair with this device's key: the short code from the account page, a subscription or null. */
  pair(code: string, subscription: unknown = null, name = 'Test phone', overrides: RequestOverrides = {}) {
    return this.request<{ device?: { id: string; name: string; state: string }; error?: string }>('POST', '/app/api/pair', { code, publicKey: this.jwk, name, subscription }, overrides);
  }
}
