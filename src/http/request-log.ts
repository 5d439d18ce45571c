/** A request id on every request and response, a child logger carrying it, and one access-log line. */
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.ts';

export function requestLog(log: Logger) {
  return async function logRequests(ctx: Context, next: Next) {
    const incoming = ctx.get('x-request-id');
    const requestId = /^[A-Za-z0-9._-]{8,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = log.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    const started = performance.now();
    try {
      await next();
    } finally {
      const status = ctx.respond === false ? ctx.res.statusCode : ctx.status;
      ctx.state.log.debug({ method: ctx.method, path: ctx.path, status, ms: Math.round(performance.now() - started), ip: ctx.ip }, 'request');
    }
  };
}
