/** How operations show a user (never a password hash), and find the one an administrator names. */
import type { Services } from '../../services.ts';
import type { User } from '../../store/users.ts';
import { OperationError } from './actor.ts';

export interface UserView {
  id: string;
  email: string;
  name: string | null;
  roles: string[];
  status: User['status'];
  createdAt: Date;
}

export const view = (u: User): UserView => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: u.createdAt });

/** The user with this id, or else with this email address (any case); undefined when neither. */
export async function findUser(services: Services, ref: string): Promise<User | undefined> {
  return (await services.store.users.findById(ref)) ?? (ref.includes('@') ? await services.store.users.findByEmail(ref) : undefined);
}

/** Throws the 404 an operation on a user gives when the user it names does not exist. */
export function found(user: User | undefined, ref: string): asserts user is User {
  if (!user) throw new OperationError('user.not_found', `no user with id or email ${ref}`, 404);
}
