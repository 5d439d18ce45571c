/**
 * Latchkey's own signed cookies: HMAC-signed with the cookie keys (the first signs, all verify, the name is
 * signed too), HttpOnly, SameSite=Lax, Secure behind TLS, scoped to a path under the issuer, with a
 * `__Host-` or `__Secure-` name prefix under an https issuer. Anything
 * malformed, oversized or badly signed reads as no cookie.
 * Kept rather than Koa's `ctx.cookies` with keys (keygrip): that signs into a second `<name>.sig` cookie
 * per value and leaves the name out of the MAC; here one cookie carries value and signature, bound to its name.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type { Config } from '../config.ts';

const VALUE = /^([A-Za-z0-9_-]{1,1500})\.([A-Za-z0-9_-]{43})$/;

/**
 * A cookie's name as the browser sees it. With an https issuer: `__Host-` for a cookie of the whole site
 * (Secure, Path=/, no Domain: no subdomain or plain-http page can set or shadow it, ASVS 3.4.4), and
 * `__Secure-` for one scoped to a path (the account page's). An http issuer (development) keeps the name.
 */
export function cookieName(config: Config, name: string, path: string): string {
  if (new URL(config.issuer).protocol !== 'https:') return name;
  return path === '/' ? `__Host-${name}` : `__Secure-${name}`;
}

/**
 * `subPath` is under the issuer's path: "/account", or "" for the whole site. `sameSite`: Lax unless the
 * cookies must never come with a request another site starts (the admin console's session).
 */
export function signedCookies(config: Config, subPath: string, { sameSite = 'lax' }: { sameSite?: 'lax' | 'strict' } = {}) {
  const issuer = new URL(config.issuer);
  const tls = issuer.protocol === 'https:';
  const path = `${issuer.pathname.replace(/\/+$/, '')}${subPath}` || '/';
  const named = (name: string) => cookieName(config, name, path);
  /** Secure behind TLS: an https issuer (browsers only ever see https), or a request a trusted proxy says came over https. */
  const secure = (ctx: Context) => {
    if (tls) ctx.cookies.secure = true; // koa refuses Secure cookies on a request it thinks is plain http
    return tls || ctx.secure;
  };
  const mac = (key: string, name: string, value: string) => createHmac('sha256', key).update(`${name}=${value}`).digest('base64url');

  return {
    /** The verified value, or undefined. */
    get(ctx: Context, name: string): string | undefined {
      const raw = ctx.cookies.get(named(name));
      const m = raw ? VALUE.exec(raw) : null;
      if (!m) return undefined;
      const [, value, sig] = m as unknown as [string, string, string];
      const got = Buffer.from(sig);
      for (const key of config.secrets.cookieKeys) {
        const expected = Buffer.from(mac(key, name, value));
        if (expected.length === got.length && timingSafeEqual(expected, got)) return value;
      }
      return undefined;
    },
    /** `value` must be base64url. Without `maxAgeSeconds`, the cookie lasts until the browser closes. */
    set(ctx: Context, name: string, value: string, maxAgeSeconds?: number): void {
      ctx.cookies.set(named(name), `${value}.${mac(config.secrets.cookieKeys[0]!, name, value)}`, {
        httpOnly: true, sameSite, secure: secure(ctx), path, overwrite: true, ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds * 1000 }),
      });
    },
    clear(ctx: Context, name: string): void {
      ctx.cookies.set(named(name), null, { httpOnly: true, sameSite, secure: secure(ctx), path, overwrite: true });
    },
  };
}

export type SignedCookies = ReturnType<typeof signedCookies>;
