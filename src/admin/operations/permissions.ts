/**
 * What each console role may do, checked by every operation (inside `audited`, so a refusal is in the
 * audit log): `admin` everything; `helpdesk` users, but never an account that holds a role, and never roles;
 * `auditor` reading only, the audit log included. The CLI's operator is an administrator. A client of the
 * REST API may do what its token's scopes allow (SCOPE_PERMISSIONS), never grant a role, and, like the
 * help desk, never change an account that holds one (reading it is fine).
 */
import type { AdminApiScope } from '../../oidc/admin-api.ts';
import type { Role } from '../../store/users.ts';
import { OperationError, type Actor, type ApiActor } from './actor.ts';

export type Permission =
  | 'users.read' | 'users.write' | 'roles.grant'
  | 'clients.read' | 'clients.write' | 'keys.read' | 'keys.write' | 'audit.read' | 'database.migrate';

const READS: readonly Permission[] = ['users.read', 'clients.read', 'keys.read', 'audit.read'];

const ALLOWED: { readonly [R in Role]: (p: Permission) => boolean } = {
  admin: () => true,
  helpdesk: (p) => p === 'users.read' || p === 'users.write',
  auditor: (p) => READS.includes(p),
};

/** What each scope of the admin API's tokens allows. No scope grants roles or migrates the database. */
export const SCOPE_PERMISSIONS: { readonly [S in AdminApiScope]: readonly Permission[] } = {
  'admin:users.read': ['users.read'],
  'admin:users.write': ['users.read', 'users.write'],
  'admin:clients': ['clients.read', 'clients.write'],
  'admin:keys': ['keys.read', 'keys.write'],
  'admin:audit.read': ['audit.read'],
};

/** The scopes that give `permission` (a 403's challenge and the OpenAPI document name them). */
export const scopesGranting = (permission: Permission): AdminApiScope[] =>
  (Object.keys(SCOPE_PERMISSIONS) as AdminApiScope[]).filter((scope) => SCOPE_PERMISSIONS[scope].includes(permission));

/** Never an API client's, whatever its scopes or roles. */
const NEVER_API: readonly Permission[] = ['roles.grant', 'database.migrate'];

export function rolesOf(actor: Actor): readonly Role[] {
  if (actor.via === 'cli') return ['admin'];
  return 'roles' in actor ? actor.roles : [];
}

/** Whether the actor's roles (or an API client's scopes) allow `permission`, on no particular user. */
export function allows(actor: Actor, permission: Permission): boolean {
  if (actor.via === 'api' && NEVER_API.includes(permission)) return false;
  if (actor.via === 'api' && 'scopes' in actor) return actor.scopes.some((s) => SCOPE_PERMISSIONS[s]?.includes(permission));
  return rolesOf(actor).some((r) => ALLOWED[r]?.(permission));
}

/**
 * Throws a 403 OperationError unless one of the actor's roles allows `permission`, and, for an action on
 * one user (`target`), unless the actor may act on that user: only an administrator acts on an account
 * that holds a role (an auditor may still read it), and an API client only reads one.
 */
export function authorize(actor: Actor, permission: Permission, target?: { roles: readonly string[] }): void {
  if (actor.via === 'api') return authorizeClient(actor, permission, target);
  const roles = rolesOf(actor);
  if (!allows(actor, permission)) {
    throw new OperationError('permission.denied', `${describe(roles)} may not ${permission.replace('.', ' ')}`, 403);
  }
  if (target && target.roles.length > 0 && !roles.includes('admin') && !(permission === 'users.read' && roles.includes('auditor'))) {
    throw new OperationError('permission.denied', `only an administrator acts on an account that holds a role (${target.roles.join(', ')})`, 403);
  }
}

function authorizeClient(actor: ApiActor, permission: Permission, target?: { roles: readonly string[] }): void {
  if (!allows(actor, permission)) {
    const grants = 'scopes' in actor ? `a token with the scope(s) ${actor.scopes.join(' ') || '(none)'}` : `a client with ${describe(actor.roles)}`;
    throw new OperationError('permission.denied', `${grants} may not ${permission.replace('.', ' ')}`, 403);
  }
  if (target && target.roles.length > 0 && permission !== 'users.read') {
    throw new OperationError('permission.denied', `an API client never changes an account that holds a role (${target.roles.join(', ')})`, 403);
  }
}

/**
 * A client of the admin API (one registered for `admin:` scopes) is to clients what a role holder is to
 * users: an API client may not register one, give a client such scopes, or change, rotate, disable or
 * remove one; otherwise `admin:clients` alone would mint itself every other admin scope. Only an
 * administrator does, in the console or the CLI.
 */
export function authorizeClientTarget(actor: Actor, ...scopes: (string | readonly string[] | null | undefined)[]): void {
  if (actor.via !== 'api') return;
  const words = scopes.flatMap((s) => (s == null ? [] : typeof s === 'string' ? s.split(' ') : [...s]));
  if (words.some((w) => w.startsWith('admin:'))) {
    throw new OperationError('permission.denied', 'an API client never registers, changes or takes over a client of the admin API (one with admin: scopes): an administrator does, in the console or the CLI', 403);
  }
}

const describe = (roles: readonly Role[]) => (roles.length ? `the role(s) ${roles.join(', ')}` : 'an account without a role');
