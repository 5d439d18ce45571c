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
      if (appError === DATABASE_UNAVAILABLE) ctx.state.log?.warn({ database: { reason: (err as Error)?.message, error: (err as { code?: unknown })?.code } }, 'database unavailable: answered 503');
      else if (appError.status >= 500) ctx.state.log?.error({ err }, 'request failed');
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
  if (appError.status === 503) ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  if (opts.json || ctx.accepts('html', 'json') === 'json') {
    ctx.body = { error: appError.code, message, ...(appError.expose && appError.details ? appError.details : {}) };
  } else {
    ctx.type = 'html';
    const heading = render.t.has(`errors.headings.${appError.code}`) ? render.t(`errors.headings.${appError.code}`) : undefined;
    ctx.body = render('errors/error.njk', { heading, message, code: appError.code, requestId: opts.requestId });
  }
}

/**
 * The database is away (unreachable, refusing, not answering in time, shutting down): not a bug, and
 * nothing the client did. Answered 503 with Retry-After. What the request wrote is usually undone: a
 * statement PostgreSQL cancelled (statement_timeout) or never received, and a transaction that did not
 * commit, leave nothing. Not always: a request may have committed a statement before the one that failed,
 * and when the network dies while PostgreSQL runs a single-statement write, the write may still commit
 * there after the connection's dead-network backstop gave up (store/db.ts `endWhenSilent`).
 */
export const DATABASE_UNAVAILABLE = new AppError('temporarily_unavailable', 503, 'The service is unavailable for a moment.', false);

/** Seconds a client is asked to wait after a 503 (Retry-After). */
export const RETRY_AFTER_SECONDS = 5;

/** Socket errors of a connection to PostgreSQL that went away or never came. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/**
 * PostgreSQL's SQLSTATEs for "not now": class 08 (connection exception), too many connections, shutting
 * down or starting up, and a cancelled statement (statement_timeout).
 */
const UNAVAILABLE_STATES = new Set(['53300', '57P01', '57P02', '57P03', '57014']);
/**
 * What pg and knex say when a connection ended or could not be had in time (they give no code): the whole
 * message, or its end after the statement that knex puts first ("select … - Connection terminated unexpectedly").
 */
const UNAVAILABLE_MESSAGES = /(?:^| - )(Connection terminated|timeout expired|Query read timeout|Client has encountered a connection error|Connection ended unexpectedly|Knex: Timeout acquiring a connection)/;

export function databaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
    if (name === 'KnexTimeoutError') return true;
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08') || UNAVAILABLE_STATES.has(code))) return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message)) return true;
  }
  return false;
}

function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (databaseUnavailable(err)) return DATABASE_UNAVAILABLE;
  const e = err as { status?: number; statusCode?: number; expose?: boolean; message?: string; code?: string };
  const status = e?.status ?? e?.statusCode;
  // Koa's own client errors (bad URL encoding, ctx.throw(4xx)) are safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('request.invalid', status, e.expose && e.message ? e.message : 'The request was not valid.');
  }
  return new AppError('server_error', 500, 'internal error', false);
}
