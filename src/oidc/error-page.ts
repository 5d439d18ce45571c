/**
 * What people see when oidc-provider stops: a protocol error page in words (its `renderError`), and the
 * branded 404 for a path that neither Latchkey's routes nor oidc-provider's answer.
 *
 * A protocol error page says what happened in a sentence chosen by the OAuth error code; the code stays,
 * small, below it, and oidc-provider's own description (written for the app's developer) is folded away
 * under "Details for the app's developer". A server error shows neither the description nor a stack trace.
 */
import type { Context, Next } from 'koa';
import { errors, type ErrorOut, type KoaContextWithOIDC } from 'oidc-provider';
import { AppError } from '../errors.ts';
import { preferUiLocales } from '../i18n.ts';
import { databaseUnavailable, RETRY_AFTER_SECONDS, sendError } from '../http/errors.ts';
import type { Render } from '../http/render.ts';
import type { Logger } from '../log.ts';

/** The request id that http/request-log.ts set on the response before handing it to oidc-provider. */
const requestIdOf = (ctx: Context): string | undefined => {
  const id = ctx.res.getHeader('x-request-id');
  return typeof id === 'string' ? id : undefined;
};

/** oidc-provider's `renderError`: the error page of /auth, /session/end, /device and a browser at its other endpoints. */
export function protocolErrorPage(render: Render, log: Logger, productName: string) {
  return async function renderError(ctx: KoaContextWithOIDC, out: ErrorOut, error: Error): Promise<void> {
    const away = databaseUnavailable(error);
    if (away) {
      ctx.status = 503;
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
    } else if (!(error instanceof errors.OIDCProviderError)) log.error({ err: error }, 'protocol error');
    const code = away ? 'temporarily_unavailable' : typeof out.error === 'string' && /^[a-z_]{1,64}$/.test(out.error) ? out.error : 'server_error';
    const key = `errors.protocol.${code}`;
    preferUiLocales(ctx.oidc?.params?.ui_locales);
    ctx.type = 'html';
    ctx.body = render('errors/error.njk', {
      heading: render.t('errors.protocolHeading'),
      message: render.t(render.t.has(key) ? key : 'errors.protocolDefault', { product: productName }),
      code,
      protocol: true,
      description: code === 'server_error' ? undefined : out.error_description,
      requestId: requestIdOf(ctx),
    });
  };
}

/**
 * oidc-provider's endpoints for programs (its default routes): a wrong method or an unknown path under them
 * answers JSON, whatever the client accepts. Elsewhere a browser gets the page and a program JSON.
 */
const API_PATHS = ['/token', '/me', '/reg', '/jwks', '/request', '/device/auth', '/backchannel', '/challenge', '/.well-known'];
const isApiPath = (path: string) => API_PATHS.some((p) => path === p || path.startsWith(`${p}/`));

/**
 * Requests whose server error was the database being away (oidc-provider's `server_error` event, emitted
 * with the request's context while its error handler answers): answered 503 `temporarily_unavailable`.
 */
const databaseAway = new WeakSet<object>();
const watchedProviders = new WeakSet<object>();

/** oidc-provider's JSON answer to a request it could not serve because the database was away. */
const unavailableJson = { error: 'temporarily_unavailable', error_description: 'the service is unavailable for a moment, try again later' };

/**
 * Added to the provider with `provider.use`: runs around its router, answers what no route took, and turns
 * a server error caused by the database being away into a 503 `temporarily_unavailable` (the page itself
 * is renderError's, above). `ctx.app` is the provider (oidc-provider's Provider is the Koa application).
 */
export function unknownPaths(render: Render) {
  return async function notFound(ctx: Context, next: Next): Promise<void> {
    const provider = ctx.app;
    if (!watchedProviders.has(provider)) {
      watchedProviders.add(provider);
      provider.on('server_error', (errorCtx: Context, err: unknown) => {
        if (databaseUnavailable(err)) databaseAway.add(errorCtx);
      });
    }
    await next();
    if (databaseAway.has(ctx) && ctx.status === 500) {
      ctx.status = 503;
      ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
      if (ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body)) ctx.body = { ...unavailableJson };
      return;
    }
    if (ctx.status !== 404 || ctx.body != null) return;
    sendError(ctx, render, new AppError('not_found', 404), { requestId: requestIdOf(ctx), json: isApiPath(ctx.path) });
  };
}
