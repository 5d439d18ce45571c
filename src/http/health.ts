/** /healthz: the process answers. /readyz: the database answers too. */
import type { Context, Next } from 'koa';
import type { Database } from '../store/db.ts';

export function health(database: Database, isShuttingDown: () => boolean) {
  return async function healthRoutes(ctx: Context, next: Next) {
    if (ctx.path === '/healthz') {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (ctx.path === '/readyz') {
      ctx.set('Cache-Control', 'no-store');
      if (isShuttingDown()) {
        ctx.status = 503;
        ctx.body = { status: 'shutting_down' };
        return;
      }
      try {
        await Promise.race([
          database.ping(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2000).unref()),
        ]);
        ctx.body = { status: 'ok', database: 'ok' };
      } catch {
        ctx.status = 503;
        ctx.body = { status: 'unavailable', database: 'unreachable' };
      }
      return;
    }
    await next();
  };
}
