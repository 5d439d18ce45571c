/**
 * The one place errors become responses. AppErrors render their code (and message when exposed) as an
 * HTML error page or JSON, by what the client accepts; anything else is a 500 that is logged and never
 * shows a stack trace.
 */
import type { Context, Next } from 'koa';
import { AppError } from '../errors.ts';
import type { Render } from './render.ts';

export function errorHandler(render: Render) {
  return async function handleErrors(ctx: Context, next: Next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined && ctx.respond !== false) {
        throw new AppError('not_found', 404, 'There is nothing at this address.');
      }
    } catch (err) {
      const appError = toAppError(err);
      if (appError.status >= 500) ctx.state.log?.error({ err }, 'request failed');
      sendError(ctx, render, appError, { requestId: ctx.state.requestId });
    }
  };
}

/**
 * Answers with an error: JSON when the client prefers it (or `json` says so), else the branded error page.
 * Also used for oidc-provider's unknown paths (oidc/error-page.ts), whose Koa context is not ours.
 */
export function sendError(ctx: Context, render: Render, appError: AppError, opts: { requestId?: string; json?: boolean } = {}): void {
  const key = `errors.${appError.code}`;
  const message = !appError.expose ? render.t('errors.server') : render.t.has(key) ? render.t(key) : appError.message;
  ctx.status = appError.status;
  if (opts.json || ctx.accepts('html', 'json') === 'json') {
    ctx.body = { error: appError.code, message, ...(appError.expose && appError.details ? appError.details : {}) };
  } else {
    ctx.type = 'html';
    const heading = render.t.has(`errors.headings.${appError.code}`) ? render.t(`errors.headings.${appError.code}`) : undefined;
    ctx.body = render('errors/error.njk', { heading, message, code: appError.code, requestId: opts.requestId });
  }
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string; code?: string };
  const status = e?.status ?? e?.statusCode;
  // Koa's own client errors (bad URL encoding, ctx.throw(4xx)) are safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('request.invalid', status, e.expose && e.message ? e.message : 'The request was not valid.');
  }
  return new AppError('server_error', 500, 'internal error', false);
}
