/** Security headers on every response, including oidc-provider's (set before it runs). */
import type { Context, Next } from 'koa';
import type { Config } from '../config.ts';

/** The site's CSP, one directive a string (push/app-files.ts extends it for the phone app at /app/). */
export const cspDirectives = (logoOrigin: string | undefined): string[] => [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  `img-src 'self' data:${logoOrigin ? ` ${logoOrigin}` : ''}`,
  "connect-src 'self'",
  "form-action 'self' https: http://localhost:* http://127.0.0.1:*",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "object-src 'none'",
];

export function securityHeaders(config: Config) {
  const tls = new URL(config.issuer).protocol === 'https:';
  const logo = config.branding.logoUrl;
  const CSP = cspDirectives(logo?.startsWith('https://') ? new URL(logo).origin : undefined).join('; ');
  return async function headers(ctx: Context, next: Next) {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own form posts,
    // which the CSRF Origin check must refuse. Other sites (the apps) still get no Referer at all.
    ctx.set('Referrer-Policy', 'same-origin');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
    if (tls) ctx.set('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    await next();
  };
}
