/**
 * The console's users section, read as a table (the steps are the kit's: context.ts):
 *
 *   GET  /users                          search, filters, keyset pages
 *   GET  /users/invite, POST             invite by a mailed link
 *   GET  /users/:id                      the user's page
 *   POST /users/:id/{disable,enable,unlock,reset-link,sessions/revoke}
 *   GET  /users/:id/delete, POST         step-up `user-delete`, then the address typed back
 *   GET  /users/:id/roles, POST          step-up `roles-grant` (an administrator's alone)
 *   GET  /users/:id/two-step-reset, POST step-up `two-step-reset` (the help-desk reset)
 */
import type Router from '@koa/router';
import type { Next } from 'koa';
import { AppError } from '../errors.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { deletion, roleChange, twoStepReset, userActions } from './user-actions.ts';
import { invite, showInvite, showUsers } from './user-list.ts';
import { showUserPage } from './user-page.ts';

/** A user's id as the routes take it (a UUID); anything else is not a console page. */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function userId(ctx: ConsoleContext, next: Next): Promise<void> {
  if (!ID.test(ctx.params.id ?? '')) throw new AppError('not_found', 404, 'There is no such page.');
  await next();
}

export function userRoutes(router: Router, kit: ConsoleKit): void {
  const { signedIn, form, stepUp } = kit;
  const page = (suffix: string) => (ctx: ConsoleContext) => `/admin/users/${ctx.params.id}/${suffix}`;
  const act = userActions(kit);
  const del = deletion(kit);
  const roles = roleChange(kit);
  const reset = twoStepReset(kit);

  router.get('/users', signedIn, showUsers(kit));
  router.get('/users/invite', signedIn, showInvite(kit));
  router.post('/users/invite', form, signedIn, invite(kit));
  router.get('/users/:id', userId, signedIn, showUserPage(kit));
  router.post('/users/:id/disable', form, userId, signedIn, act.disable);
  router.post('/users/:id/enable', form, userId, signedIn, act.enable);
  router.post('/users/:id/unlock', form, userId, signedIn, act.unlock);
  router.post('/users/:id/reset-link', form, userId, signedIn, act.resetLink);
  router.post('/users/:id/sessions/revoke', form, userId, signedIn, act.revokeSessions);
  router.get('/users/:id/delete', userId, signedIn, stepUp('user-delete', page('delete')), del.show);
  router.post('/users/:id/delete', form, userId, signedIn, stepUp('user-delete', page('delete')), del.remove);
  router.get('/users/:id/roles', userId, signedIn, stepUp('roles-grant', page('roles')), roles.show);
  router.post('/users/:id/roles', form, userId, signedIn, stepUp('roles-grant', page('roles')), roles.save);
  router.get('/users/:id/two-step-reset', userId, signedIn, stepUp('two-step-reset', page('two-step-reset')), reset.show);
  router.post('/users/:id/two-step-reset', form, userId, signedIn, stepUp('two-step-reset', page('two-step-reset')), reset.reset);
}
