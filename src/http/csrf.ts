/**
 * CSRF protection for our own forms: a token bound to a random per-browser cookie (HMAC, compared in
 * constant time) plus an Origin check. oidc-provider's endpoints protect themselves.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { readForm } from './body.ts';
import { cookieName } from './signed-cookies.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

const COOKIE = 'lk.csrf';

export function csrf(config: Config) {
  const key = config.secrets.cookieKeys[0]!;
  // Latchkey's own origins: the issuer's, and the other host names it answers on (webauthn.origins).
  const origins = new Set([new URL(config.issuer).origin, ...(config.webauthn.origins ?? [])]);
  const secure = new URL(config.issuer).protocol === 'https:';
  const name = cookieName(config, COOKIE, '/');
  const sign = (seed: string) => createHmac('sha256', key).update(`csrf:${seed}`).digest('base64url');
  // A seed made for a browser without the cookie, kept for the rest of the request: every form of one page
  // (the page's own and the layout's language picker) carries the token of the one cookie it sets.
  const issued = new WeakMap<Context, string>();

  return {
    /** The token for a form on this page (sets the cookie when the browser has none). */
    token(ctx: Context): string {
      let seed = issued.get(ctx) ?? ctx.cookies.get(name);
      if (!seed || !/^[A-Za-z0-9_-]{22,64}$/.test(seed)) {
        seed = randomBytes(18).toString('base64url');
        issued.set(ctx, seed);
        if (secure) ctx.cookies.secure = true; // koa refuses Secure cookies on a request it thinks is plain http
        ctx.cookies.set(name, seed, { httpOnly: true, sameSite: 'strict', secure, overwrite: true, path: '/' });
      }
      return sign(seed);
    },
    /** Refuses a state-changing request from another origin or without the matching token. */
    verify(ctx: Context, submitted: unknown): void {
      const from = ctx.get('origin');
      if (from && !origins.has(from)) throw new AppError('csrf.origin', 403, 'This form was sent from another site and was refused.');
      const seed = ctx.cookies.get(name);
      const expected = seed ? Buffer.from(sign(seed)) : undefined;
      const got = typeof submitted === 'string' ? Buffer.from(submitted) : undefined;
      if (!expected || !got || expected.length !== got.length || !timingSafeEqual(expected, got)) {
        throw new AppError('csrf.token', 403, 'This form has expired. Go back, reload the page and try again.');
      }
    },
  };
}

export type Csrf = ReturnType<typeof csrf>;

/** The POST step every form shares: read the urlencoded body, check its CSRF token and Origin, keep it in ctx.state.form. */
export function checkedForm(forms: Csrf) {
  return async function readCheckedForm(ctx: Context & { state: { form?: Record<string, string> } }, next: Next) {
    const form = await readForm(ctx);
    forms.verify(ctx, form.csrf);
    ctx.state.form = form;
    await next();
  };
}
