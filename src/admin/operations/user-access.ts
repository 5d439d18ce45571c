/**
 * Whether and how a user gets in, as administrators change it: disable (every session and refresh token
 * ends at once) and enable, unlock after too many failed sign-ins, a password-reset link by mail, and the
 * console roles (an administrator's alone to grant). Each leaves its audit row and the user's event.
 */
import { languageOf } from '../../i18n.ts';
import { revokedGrantSeconds } from '../../oidc/adapter.ts';
import { accountKey } from '../../security/attempts.ts';
import type { Services } from '../../services.ts';
import { isRole, ROLES, type Role, type User } from '../../store/users.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { logOutApps } from './provider.ts';
import { findUser, found, view, type UserView } from './user-target.ts';
import { lastAdminGuard, oneLinkMailAMinute } from './users.ts';

/** An operation on one named user: found, allowed for this actor, audited with its before and after. */
async function onUser<T>(
  services: Services, actor: Actor, ref: string, action: string,
  run: (user: User) => Promise<T>,
  outcome: (result: T, user: User) => { after?: unknown; event: { type: Parameters<Services['events']['record']>[0]['type']; details?: Record<string, unknown> } },
  permission: 'users.write' | 'roles.grant' = 'users.write',
): Promise<T> {
  const who = actorFields(actor);
  const target = await findUser(services, ref);
  return audited(services, actor, {
    action,
    target: { type: 'user', id: target?.id ?? ref },
    before: target && view(target),
    outcome: (result) => {
      const o = outcome(result, target!);
      return { after: o.after, event: { type: o.event.type, userId: target!.id, ...who, details: { ...who.details, ...o.event.details } } };
    },
  }, async () => {
    authorize(actor, permission); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, permission, target);
    return run(target);
  });
}

/**
 * Disables a user: in one transaction the status changes, every session ends and every grant, refresh and
 * access token is revoked; then the apps hear of it by back-channel logout. The last active administrator
 * cannot be disabled. Sign-in then answers exactly as for a wrong password.
 */
export async function disableUser(services: Services, actor: Actor, ref: string): Promise<UserView & { sessionsEnded: number }> {
  return onUser(services, actor, ref, 'users.disable', async (user) => {
    const done = await lastAdminGuard(() => services.store.disableUser(user.id, revokedGrantSeconds(services.config)));
    found(done?.user, ref);
    await logOutApps(services, user.id, done.sessions);
    return { ...view({ ...done.user, status: 'disabled' }), sessionsEnded: done.sessions.length };
  }, (r) => ({ after: { status: r.status }, event: { type: 'user.disabled', details: { sessionsEnded: r.sessionsEnded } } }));
}

export async function enableUser(services: Services, actor: Actor, ref: string): Promise<UserView> {
  return onUser(services, actor, ref, 'users.enable', async (user) => {
    await services.store.users.setStatus(user.id, 'active');
    return view({ ...user, status: 'active' });
  }, (r) => ({ after: { status: r.status }, event: { type: 'user.enabled' } }));
}

/** Clears the failed sign-ins and the lock they led to; `wasLocked` says whether there was one. */
export async function unlockUser(services: Services, actor: Actor, ref: string): Promise<UserView & { wasLocked: boolean }> {
  return onUser(services, actor, ref, 'users.unlock', async (user) => {
    const key = accountKey(user.email);
    const counter = (await services.store.counters.get([key])).get(key);
    await services.attempts.clear(user.email);
    return { ...view(user), wasLocked: !!counter && counter.count >= services.config.throttle.lockAfter };
  }, (r) => ({ after: { wasLocked: r.wasLocked }, event: { type: 'user.unlocked', details: { wasLocked: r.wasLocked } } }));
}

/**
 * Mails the user a password-reset link (the reset flow's own: single use, short-lived, the older ones
 * die). The administrator never sees the link.
 */
export async function sendResetLink(services: Services, actor: Actor, ref: string): Promise<UserView> {
  return onUser(services, actor, ref, 'users.reset_link', async (user) => {
    if (user.status !== 'active') throw new OperationError('user.disabled', `${user.email} is disabled: enable the account first`, 409);
    await oneLinkMailAMinute(services, 'admin-reset', user);
    const token = await services.store.codes.issue('password_reset', user.id, services.config.ttl.passwordResetLink, { email: user.email });
    await services.mailer.send(user.email, 'reset-password', { email: user.email, link: `${services.config.issuer}/reset/confirm?token=${token}` }, languageOf(user));
    return view(user);
  }, () => ({ event: { type: 'password_reset.link_sent_by_admin' } }));
}

export interface RoleChange {
  grant?: readonly string[] | undefined;
  revoke?: readonly string[] | undefined;
}

/**
 * Grants and revokes console roles: an administrator's alone. Taking `admin` from the last active
 * administrator is refused, also when two demotions race (store: keepAnAdmin).
 */
export async function changeRoles(services: Services, actor: Actor, ref: string, change: RoleChange): Promise<UserView> {
  return onUser(services, actor, ref, 'users.roles', async (user) => {
    const grant = checkedRoles(change.grant, 'grant');
    const revoke = checkedRoles(change.revoke, 'revoke');
    if (!grant.length && !revoke.length) throw new OperationError('user.roles_missing', 'name a role to grant or to revoke', 400, 'grant');
    const both = grant.find((r) => revoke.includes(r));
    if (both) throw new OperationError('user.roles_conflict', `${both} is both granted and revoked`, 400, 'revoke');
    const done = await lastAdminGuard(() => services.store.users.changeRoles(user.id, { grant, revoke }));
    found(done?.after, ref);
    return view(done.after);
  }, (r, user) => ({
    after: { roles: r.roles },
    event: { type: 'user.roles_changed', details: { before: user.roles, roles: r.roles } },
  }), 'roles.grant');
}

function checkedRoles(values: readonly string[] | undefined, field: string): Role[] {
  for (const v of values ?? []) {
    if (!isRole(v)) throw new OperationError('user.role_unknown', `"${v}" is not a role: one of ${ROLES.join(', ')}`, 400, field);
  }
  return [...new Set(values ?? [])] as Role[];
}
