/**
 * The admin REST API at /admin/api/v1, for clients with a client-credentials access token (bearer.ts).
 * The router is made from the route table (table.ts), each route answered by the same pipeline
 * (pipeline.ts); the OpenAPI document from the same table. Everything under /admin/api answers here, with
 * `Cache-Control: no-store`, and every error as problem details: an unknown path 404, a known path with
 * another method 405 (with `Allow`), and nothing ever falls through to the console or the provider.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { ConsoleDeps } from '../../console/context.ts';
import type { Services } from '../../services.ts';
import { openApiDocument } from './openapi.ts';
import { runRoute } from './pipeline.ts';
import { ApiProblem, sendProblem, toProblem } from './problem.ts';
import { API_PREFIX, API_ROUTES } from './table.ts';

/** `/users/{id}` as the router writes it: `/users/:id`. */
const routerPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

async function problems(ctx: Context, next: Next): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  try {
    await next();
  } catch (err) {
    const problem = toProblem(err);
    if (problem.status >= 500) ctx.state.log?.error({ err }, 'admin API request failed');
    sendProblem(ctx, problem, err instanceof ApiProblem ? err.headers : {});
  }
}

/** The routes of the table (and the document) at /admin/api/v1: what the edge below answers with. */
export function apiRouter(services: Services): Router {
  const document = JSON.stringify(openApiDocument(services.config, API_ROUTES));
  const api = new Router({ prefix: API_PREFIX });
  api.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = document;
  });
  for (const route of API_ROUTES) api[route.method](routerPath(route.path), runRoute(services, route));
  return api;
}

export function adminApiRoutes(deps: ConsoleDeps): Router {
  const api = apiRouter(deps);
  const routes = api.routes();

  /** No route of that method at that path: 405 when the path has others, else 404. */
  function unmatched(ctx: Context): never {
    const methods = [...new Set(api.match(ctx.path, ctx.method).path.flatMap((layer) => layer.methods))];
    if (methods.length) throw new ApiProblem('request.method_not_allowed', 405, `${ctx.method} is not allowed here: ${methods.join(', ')}`, undefined, { Allow: methods.join(', ') });
    throw new ApiProblem('not_found', 404, 'There is no such route in this API (GET /admin/api/v1/openapi.json lists them).');
  }

  const edge = new Router();
  edge.all(['/admin/api', '/admin/api/{*rest}'], problems, (ctx, next) => routes(ctx as never, next), unmatched);
  return edge;
}
