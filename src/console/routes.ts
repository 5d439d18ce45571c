/**
 * The admin console at /admin (issue 13), read as a table. The core (session.ts, kit.ts) signs in through
 * the provider's /auth as the first-party client `latchkey-admin` and keeps the console's own session; each
 * section adds its routes with the kit's steps (context.ts):
 *
 *   signedIn             the console session and its user holding a role, or sign in and come back
 *   form                 the POST body, its CSRF token and Origin checked first
 *   stepUp(action, back) a fresh sign-in for a sensitive action, or step up and come back to `back`
 *
 * Every answer is `no-store`; the site's CSP (http/headers.ts) forbids framing.
 */
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import { ADMIN_APP } from '../first-party/app.ts';
import { firstPartyCallback } from '../first-party/callback.ts';
import { auditRoutes } from './audit.ts';
import { clientRoutes } from './clients.ts';
import type { ConsoleContext, ConsoleDeps, ConsoleKit } from './context.ts';
import { keyRoutes } from './keys.ts';
import { createKit } from './kit.ts';
import { consoleCallback, signOutOfConsole } from './session.ts';
import { userRoutes } from './users.ts';

async function noStore(ctx: Context, next: Next): Promise<void> {
  ctx.set('Cache-Control', 'no-store');
  await next();
}

function home(kit: ConsoleKit) {
  return async function consoleHome(ctx: ConsoleContext) {
    kit.page(ctx, 'admin/home.njk');
  };
}

export function consoleRoutes(deps: ConsoleDeps): Router {
  const router = new Router({ prefix: ADMIN_APP.path });
  const kit = createKit(deps);
  router.use(noStore);

  router.get('/callback', firstPartyCallback(deps, ADMIN_APP, consoleCallback(deps)));
  router.post('/sign-out', kit.form, signOutOfConsole(deps));
  router.get('/', kit.signedIn, home(kit));

  userRoutes(router, kit);
  clientRoutes(router, kit);
  keyRoutes(router, kit);
  auditRoutes(router, kit);
  return router;
}
