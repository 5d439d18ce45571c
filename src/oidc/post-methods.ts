/**
 * POST at the authorization and logout endpoints (OpenID Connect Core §3.1.2.1, RP-Initiated Logout §2):
 * the form's parameters are sent on to the same endpoint as a GET (303), which oidc-provider answers.
 *
 * Why not oidc-provider's own `enableHttpPostMethods`: it needs the session cookie to be SameSite=None,
 * so that a cross-site form POST carries it; that cookie would then go with every cross-site request to
 * the provider. A 303 keeps it Lax: the browser follows the redirect as a top-level GET navigation, which
 * carries a Lax cookie, so a signed-in user stays signed in and nothing else changes.
 */
import type { Context, Next } from 'koa';
import { readFormParams } from '../http/body.ts';

/** Parameters that fit in a URL our server and the browser take (Node accepts 16 KB of headers). */
const PARAMS_LIMIT = 8 * 1024;

export function postToGet(paths: readonly string[]) {
  const endpoints = new Set(paths);
  return async function postMethods(ctx: Context, next: Next): Promise<void> {
    if (ctx.method !== 'POST' || !endpoints.has(ctx.path)) return next();
    const params = await readFormParams(ctx, PARAMS_LIMIT);
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(`${ctx.path}?${params.toString()}`);
  };
}
