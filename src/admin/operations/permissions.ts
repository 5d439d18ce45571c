/**
 * What each console role may do, checked by every operation (inside `audited`, so a refusal is in the
 * audit log): `admin` everything; `helpdesk` users, but never an account that holds a role, and never roles;
 * `auditor` reading only, the audit log included. The CLI's operator is an administrator.
 */
import type { Role } from '../../store/users.ts';
import { OperationError, type Actor } from './actor.ts';

export type Permission =
  | 'users.read' | 'users.write' | 'roles.grant'
  | 'clients.read' | 'clients.write' | 'keys.read' | 'keys.write' | 'audit.read' | 'database.migrate';

const READS: readonly Permission[] = ['users.read', 'clients.read', 'keys.read', 'audit.read'];

const ALLOWED: { readonly [R in Role]: (p: Permission) => boolean } = {
  admin: () => true,
  helpdesk: (p) => p === 'users.read' || p === 'users.write',
  auditor: (p) => READS.includes(p),
};

export function rolesOf(actor: Actor): readonly Role[] {
  return actor.via === 'cli' ? ['admin'] : actor.roles;
}

/**
 * Throws a 403 OperationError unless one of the actor's roles allows `permission`, and, for an action on
 * one user (`target`), unless the actor may act on that user: only an administrator acts on an account
 * that holds a role (an auditor may still read it).
 */
export function authorize(actor: Actor, permission: Permission, target?: { roles: readonly string[] }): void {
  const roles = rolesOf(actor);
  if (!roles.some((r) => ALLOWED[r]?.(permission))) {
    throw new OperationError('permission.denied', `${describe(roles)} may not ${permission.replace('.', ' ')}`, 403);
  }
  if (target && target.roles.length > 0 && !roles.includes('admin') && !(permission === 'users.read' && roles.includes('auditor'))) {
    throw new OperationError('permission.denied', `only an administrator acts on an account that holds a role (${target.roles.join(', ')})`, 403);
  }
}

const describe = (roles: readonly Role[]) => (roles.length ? `the role(s) ${roles.join(', ')}` : 'an account without a role');
