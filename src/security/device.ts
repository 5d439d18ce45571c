/**
 * The device cookie: a random id per browser in `lk.device` (signed, HttpOnly, SameSite=Lax, Secure behind
 * TLS, for 400 days, the longest browsers keep a cookie). The devices table knows, per user, the hashes of
 * the ids on which that user completed a sign-in, so a fresh cookie jar, a tampered cookie or another
 * user's cookie are all "a device we don't recognise".
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import { signedCookies } from '../http/signed-cookies.ts';
import type { Here } from '../factors/types.ts';

export const DEVICE_COOKIE = 'lk.device';
export const DEVICE_COOKIE_DAYS = 400;

export const deviceHash = (id: string) => createHash('sha256').update(`device:${id}`).digest('base64url');

/** What a factor may know of this request's device (factors/types.ts Here): its cookie hash, and a platform authenticator if known. */
export function hereOf(config: Config, ctx: Context, platformAuthenticator: boolean | null = null): Here {
  const id = deviceCookie(config).read(ctx);
  return { platformAuthenticator, deviceHash: id ? deviceHash(id) : undefined };
}

export function deviceCookie(config: Config) {
  const cookies = signedCookies(config, '');
  return {
    /** This browser's device id, when it carries a valid one. */
    read(ctx: Context): string | undefined {
      const id = cookies.get(ctx, DEVICE_COOKIE);
      return id && /^[A-Za-z0-9_-]{43}$/.test(id) ? id : undefined;
    },
    /** This browser's device id, giving it one (and the cookie) when it has none. */
    ensure(ctx: Context): string {
      const existing = this.read(ctx);
      if (existing) return existing;
      const id = randomBytes(32).toString('base64url');
      cookies.set(ctx, DEVICE_COOKIE, id, DEVICE_COOKIE_DAYS * 86400);
      return id;
    },
  };
}
