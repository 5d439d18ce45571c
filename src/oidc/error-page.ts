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
import { sendError } from '../http/errors.ts';
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
    if (!(error instanceof errors.OIDCProviderError)) log.error({ err: error }, 'protocol error');
    const code = typeof out.error === 'string' && /^[a-z_]{1,64}$/.test(out.error) ? out.error : 'server_error';
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

/** Added to the provider with `provider.use`: runs around its router and answers what no route took. */
export function unknownPaths(render: Render) {
  return async function notFound(ctx: Context, next: Next): Promise<void> {
    await next();
    if (ctx.status !== 404 || ctx.body != null) return;
    sendError(ctx, render, new AppError('not_found', 404), { requestId: requestIdOf(ctx), json: isApiPath(ctx.path) });
  };
}
