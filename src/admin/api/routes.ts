/** The admin REST API at /admin/api/v1 (stub: its routes come next). */
import Router from '@koa/router';
import type { ConsoleDeps } from '../../console/context.ts';

export function adminApiRoutes(_deps: ConsoleDeps): Router {
  return new Router({ prefix: '/admin/api/v1' });
}
