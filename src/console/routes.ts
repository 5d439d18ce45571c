/** The admin console at /admin (stub: its core comes next). */
import Router from '@koa/router';
import type { ConsoleDeps } from './context.ts';

export function consoleRoutes(_deps: ConsoleDeps): Router {
  return new Router({ prefix: '/admin' });
}
