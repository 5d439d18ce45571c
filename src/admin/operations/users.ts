/** Users, as administrators manage them: typed input and results, never a password hash. */
import { z } from 'zod';
import { passwordProblem } from '../../factors/password.ts';
import { createRenderer } from '../../http/render.ts';
import type { Services } from '../../services.ts';
import { DuplicateEmailError, type User } from '../../store/users.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';

export interface UserView {
  id: string;
  email: string;
  name: string | null;
  roles: string[];
  status: User['status'];
  createdAt: Date;
}

const view = (u: User): UserView => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: u.createdAt });

export interface NewUser {
  email: string;
  name?: string | undefined;
  password: string;
  admin?: boolean | undefined;
}

/** Creates an active user with a confirmed address (an administrator vouches for it). */
export async function addUser(services: Services, actor: Actor, input: NewUser): Promise<UserView> {
  const who = actorFields(actor);
  return audited(services, actor, {
    action: 'users.add',
    target: { type: 'user' },
    outcome: (user) => ({
      targetId: user.id, after: user,
      event: { type: 'user.created', userId: user.id, ...who, details: { ...who.details, admin: !!input.admin } },
    }),
  }, () => createUser(services, input));
}

async function createUser(services: Services, input: NewUser): Promise<UserView> {
  const email = z.email().max(320).safeParse(input.email);
  if (!email.success) throw new OperationError('user.email_invalid', `"${input.email}" is not a valid email address`, 400, 'email');
  if (input.name !== undefined && input.name.length > 200) throw new OperationError('user.name_too_long', 'at most 200 characters', 400, 'name');
  const problem = passwordProblem(input.password, { email: email.data, name: input.name });
  if (problem) throw new OperationError('user.password_refused', createRenderer(services.config).t(problem.key, problem.vars), 400, 'password');
  let user: User;
  try {
    user = await services.store.users.create({
      email: email.data, name: input.name ?? null, passwordHash: await services.hasher.hash(input.password),
      roles: input.admin ? ['admin'] : [], emailVerified: true,
    });
  } catch (err) {
    if (err instanceof DuplicateEmailError) throw new OperationError('user.exists', `a user with email ${email.data} already exists`, 409);
    throw err;
  }
  return view(user);
}

export async function listUsers(services: Services, actor: Actor): Promise<UserView[]> {
  return audited(services, actor, { action: 'users.list', target: { type: 'user' }, outcome: (users) => ({ after: { count: users.length } }) },
    async () => (await services.store.users.list()).map(view));
}
