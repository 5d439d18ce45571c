/**
 * Authenticates the phone app's signed requests (docs/mobile-app-protocol.md, "Signed requests"): no
 * cookies, a signature by the device key over the method, the absolute URL, the time, a nonce and the
 * body's hash. Refused with 401 `{error, message}`, in this order:
 *   1. headers missing or malformed (`bad_signature`);
 *   2. a time more than 60 s from the server's (`stale_time`);
 *   3. an unknown key id, a signed-out device, or a disabled account (`unknown_device`);
 *   4. a nonce this key used before (`replayed`): recorded by one conditional insert before the signature
 *      is looked at, shared by every instance;
 *   5. a signature that does not verify (`bad_signature`).
 * The body is read here (at most 8 KiB, else 413), since the signature covers it.
 *
 * Pairing (`fromBody`): the device does not exist yet, so the key comes from the body, and the key id
 * must be its thumbprint. Refusals are logged with the reason and the key id, never a signature or a body.
 */
import type { Context, Next } from 'koa';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import type { PushDevice } from '../store/push-devices.ts';
import type { User } from '../store/users.ts';
import { deviceJwk, NONCE, thumbprint, verifyDeviceSignature, type DeviceJwk } from './device-signature.ts';
import { ApiError } from './api-error.ts';

/** Bodies are JSON of at most this many bytes. */
export const MAX_BODY_BYTES = 8 * 1024;
/** A request's time may be this far from the server's, either way. */
export const TIME_WINDOW_MS = 60_000;
/** A nonce is kept longer than a signature can be accepted (past that, its time is stale anyway). */
export const NONCE_KEEP_SECONDS = 300;
const KEY_ID = /^[A-Za-z0-9_-]{43}$/;
const TIME = /^\d{1,16}$/;

export interface DeviceAuthDeps {
  config: Config;
  store: Store;
  log: Logger;
}

/** What a signed request carries once authenticated (ctx.state.signed). */
export interface Signed {
  keyId: string;
  /** The body's bytes, as signed. */
  raw: Buffer;
  /** The body as JSON ({} when empty). */
  body: unknown;
  /** Set for a known device (not when pairing). */
  device?: PushDevice;
  user?: User;
  /** The key that signed (pairing: the one in the body). */
  jwk: DeviceJwk;
}

/** The body's bytes, at most MAX_BODY_BYTES (413 past it). */
export async function readBody(ctx: Context): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > MAX_BODY_BYTES) throw new ApiError('too_large', 413);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError('too_large', 413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The body as JSON: {} when empty; 415 for another media type, 400 when it does not parse. */
export function jsonOf(ctx: Context, raw: Buffer): unknown {
  if (raw.length === 0) return {};
  if (!ctx.is('application/json')) throw new ApiError('unsupported_media_type', 415);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new ApiError('invalid_request', 400);
  }
}

/**
 * The middleware. `fromBody`: pairing, where the key is the body's `publicKey` (the device does not exist
 * yet); otherwise the key id must name a device that has not signed out, of an active account.
 */
export function deviceAuth(deps: DeviceAuthDeps, opts: { fromBody?: boolean } = {}) {
  const origin = new URL(deps.config.issuer).origin;
  return async function authenticateDevice(ctx: Context, next: Next) {
    const refuse = (reason: 'bad_signature' | 'stale_time' | 'unknown_device' | 'replayed', keyId?: string): never => {
      (ctx.state.log as Logger | undefined ?? deps.log).info({ reason, keyId, method: ctx.method, path: ctx.path, ip: ctx.ip }, 'device request refused');
      throw new ApiError(reason, 401);
    };
    const keyId = ctx.get('latchkey-device');
    const time = ctx.get('latchkey-time');
    const nonce = ctx.get('latchkey-nonce');
    const signature = ctx.get('latchkey-signature');
    if (!KEY_ID.test(keyId) || !TIME.test(time) || !NONCE.test(nonce) || !signature) refuse('bad_signature');
    if (Math.abs(Date.now() - Number(time)) > TIME_WINDOW_MS) refuse('stale_time', keyId);

    const raw = await readBody(ctx);
    let body: unknown;
    let jwk: DeviceJwk | undefined;
    let device: PushDevice | undefined;
    let user: User | undefined;
    if (opts.fromBody) {
      body = jsonOf(ctx, raw);
      const sent = (body as { publicKey?: unknown } | null)?.publicKey;
      jwk = deviceJwk(sent);
      if (!jwk) throw new ApiError('invalid_request', 400, { field: 'publicKey' });
      if (thumbprint(jwk) !== keyId) refuse('unknown_device', keyId);
    } else {
      device = await deps.store.pushDevices.findByKey(keyId);
      user = device ? await deps.store.users.findById(device.userId) : undefined;
      jwk = device ? deviceJwk(device.publicKey) : undefined;
      if (!device || !jwk || !user || user.status !== 'active') refuse('unknown_device', keyId);
    }
    // Spent before the signature is checked: a replay fails however many instances it is sent to at once.
    if (!(await deps.store.pushDevices.useNonce(keyId, nonce, NONCE_KEEP_SECONDS))) refuse('replayed', keyId);
    const url = `${origin}${ctx.originalUrl}`;
    if (!verifyDeviceSignature(jwk!, { method: ctx.method, url, time, nonce, body: raw }, signature)) refuse('bad_signature', keyId);

    const signed: Signed = { keyId, raw, body: body ?? jsonOf(ctx, raw), jwk: jwk!, ...(device ? { device, user } : {}) };
    ctx.state.signed = signed;
    await next();
  };
}
