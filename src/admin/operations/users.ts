/**
 * Users, as administrators find, create and delete them: typed input and results, never a password hash.
 * An invited user chooses their own password through a mailed link (mail-flows/invite.ts): an
 * administrator never chooses or sees one.
 */
import { z } from 'zod';
import { isPossession, factors } from '../../factors/index.ts';
import type { Factor } from '../../factors/types.ts';
import { passwordProblem } from '../../factors/password.ts';
import { createRenderer } from '../../http/render.ts';
import { languageOf } from '../../i18n.ts';
import { MAIL_INTERVAL_SECONDS } from '../../mail-flows/mail-links.ts';
import { revokedGrantSeconds } from '../../oidc/adapter.ts';
import type { Services } from '../../services.ts';
import { DuplicateEmailError, isRole, LastAdminError, type Role, type User, type UserStatus } from '../../store/users.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { logOutApps } from './provider.ts';
import { findUser, found, view, type UserView } from './user-target.ts';

export type { UserView } from './user-target.ts';

/** How long an invitation link works. */
export const INVITE_TTL_SECONDS = 24 * 3600;

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
  }, () => {
    authorize(actor, 'users.write');
    if (input.admin) authorize(actor, 'roles.grant');
    return createUser(services, input);
  });
}

function checkedEmail(value: string): string {
  const email = z.email().max(320).safeParse(value);
  if (!email.success) throw new OperationError('user.email_invalid', `"${value}" is not a valid email address`, 400, 'email');
  return email.data;
}

function checkedName(name: string | undefined): void {
  if (name !== undefined && name.length > 200) throw new OperationError('user.name_too_long', 'at most 200 characters', 400, 'name');
}

async function createUser(services: Services, input: NewUser): Promise<UserView> {
  const email = checkedEmail(input.email);
  checkedName(input.name);
  const problem = passwordProblem(input.password, { email, name: input.name });
  if (problem) throw new OperationError('user.password_refused', createRenderer(services.config).t(problem.key, problem.vars), 400, 'password');
  let user: User;
  try {
    user = await services.store.users.create({
      email, name: input.name ?? null, passwordHash: await services.hasher.hash(input.password),
      roles: input.admin ? ['admin'] : [], emailVerified: true,
    });
  } catch (err) {
    if (err instanceof DuplicateEmailError) throw new OperationError('user.exists', `a user with email ${email} already exists`, 409);
    throw err;
  }
  return view(user);
}

export async function listUsers(services: Services, actor: Actor): Promise<UserView[]> {
  return audited(services, actor, { action: 'users.list', target: { type: 'user' }, outcome: (users) => ({ after: { count: users.length } }) },
    async () => {
      authorize(actor, 'users.read');
      return (await services.store.users.list()).map(view);
    });
}

export interface UserSearchInput {
  /** Part of the email address or the name, in any case. */
  query?: string | undefined;
  status?: string | undefined;
  /** Only users with (true, `yes`) or without (false, `no`) a two-step method of the possession kind. */
  twoStep?: boolean | string | undefined;
  /** Only users locked (true, `yes`) or not locked (false, `no`) after too many failed sign-ins. */
  locked?: boolean | string | undefined;
  /** 1 to 100 (a number, or its digits from a command line or a query); 50 by default. */
  limit?: number | string | undefined;
  /** The `nextCursor` of the page before. */
  cursor?: string | undefined;
}

export interface UserPage {
  items: UserView[];
  /** For the next page; null on the last one. */
  nextCursor: string | null;
}

const STATUSES: readonly UserStatus[] = ['active', 'disabled'];
const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z\|[^|]{1,100}$/;

/** The kinds of method that make a two-step account (not the security question, not the recovery codes). */
const twoStepKinds = () => (Object.values(factors) as Factor[]).filter(isPossession).map((f) => f.kind);

/**
 * Users matching every filter, newest first, a page at a time. The cursor is the last row's place in that
 * order (keyset), so users added while an administrator pages never shift or repeat a row.
 */
export async function searchUsers(services: Services, actor: Actor, input: UserSearchInput): Promise<UserPage> {
  return audited(services, actor, {
    action: 'users.search',
    target: { type: 'user' },
    outcome: (page) => ({ after: { filter: { ...input, cursor: input.cursor ? 'given' : undefined }, count: page.items.length } }),
  }, async () => {
    authorize(actor, 'users.read');
    const limit = typeof input.limit === 'string' ? (/^\d{1,3}$/.test(input.limit) ? Number(input.limit) : NaN) : input.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new OperationError('user.limit_invalid', 'limit must be a whole number from 1 to 100', 400, 'limit');
    const twoStep = yesNo(input.twoStep, 'two-step');
    const locked = yesNo(input.locked, 'locked');
    if (input.status !== undefined && !(STATUSES as readonly string[]).includes(input.status)) {
      throw new OperationError('user.status_unknown', `status must be one of ${STATUSES.join(', ')}`, 400, 'status');
    }
    if (input.query !== undefined && input.query.length > 320) throw new OperationError('user.query_too_long', 'at most 320 characters', 400, 'query');
    let after: string | undefined;
    if (input.cursor !== undefined) {
      after = Buffer.from(input.cursor, 'base64url').toString('utf8');
      if (!POSITION.test(after)) throw new OperationError('user.cursor_invalid', 'not a cursor this search gave', 400, 'cursor');
    }
    const rows = await services.store.users.search({
      text: input.query, status: input.status as UserStatus | undefined, limit: limit + 1, after,
      twoStep: twoStep === undefined ? undefined : { has: twoStep, kinds: twoStepKinds() },
      locked: locked === undefined ? undefined : { is: locked, lockAfter: services.config.throttle.lockAfter },
    });
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => view(r.user)),
      nextCursor: rows.length > limit ? Buffer.from(page.at(-1)!.position, 'utf8').toString('base64url') : null,
    };
  });
}

function yesNo(value: boolean | string | undefined, field: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  if (value === 'yes' || value === 'true') return true;
  if (value === 'no' || value === 'false') return false;
  throw new OperationError('user.filter_invalid', `${field} is yes or no`, 400, field);
}

export interface Invitation {
  email: string;
  name?: string | undefined;
  /** Roles to give the invitee (an administrator's to grant). */
  roles?: readonly string[] | undefined;
}

/**
 * Creates a user without a password and mails them a link (single use, stored hashed, 24 hours) to a page
 * where they choose one; their address is confirmed when they do. Inviting an address again whose owner
 * never chose a password sends a new link (the old one dies). The link is never in the result.
 */
export async function inviteUser(services: Services, actor: Actor, input: Invitation): Promise<UserView & { expiresAt: Date }> {
  const who = actorFields(actor);
  return audited(services, actor, {
    action: 'users.invite',
    target: { type: 'user' },
    outcome: (user) => ({
      targetId: user.id, after: user,
      event: { type: 'user.invited', userId: user.id, ...who, details: { ...who.details, roles: user.roles } },
    }),
  }, async () => {
    authorize(actor, 'users.write');
    const roles = input.roles ?? [];
    for (const r of roles) if (!isRole(r)) throw new OperationError('user.role_unknown', `a role is one of admin, helpdesk, auditor`, 400, 'role');
    if (roles.length) authorize(actor, 'roles.grant');
    const email = checkedEmail(input.email);
    checkedName(input.name);
    let user = await services.store.users.findByEmail(email);
    if (user && (user.passwordHash !== null || user.emailVerifiedAt)) throw new OperationError('user.exists', `a user with email ${email} already exists`, 409);
    if (user) {
      authorize(actor, 'users.write', user);
      // A pending invitation keeps the roles it was made with: a new link must not say otherwise.
      if (input.roles && [...new Set(roles)].sort().join() !== [...user.roles].sort().join()) {
        throw new OperationError('user.invite_roles', 'this invitation is pending with other roles: change them with "users roles", then invite again', 409, 'role');
      }
    }
    else {
      try {
        user = await services.store.users.create({ email, name: input.name ?? null, passwordHash: null, roles: [...new Set(roles)] as Role[], emailVerified: false });
      } catch (err) {
        if (err instanceof DuplicateEmailError) throw new OperationError('user.exists', `a user with email ${email} already exists`, 409);
        throw err;
      }
    }
    await oneLinkMailAMinute(services, 'invite', user);
    const token = await services.store.codes.issue('invite', user.id, INVITE_TTL_SECONDS, { email: user.email });
    await services.mailer.send(user.email, 'invite', {
      email: user.email, link: `${services.config.issuer}/invite?token=${token}`, hours: INVITE_TTL_SECONDS / 3600,
    }, languageOf(user));
    return { ...view(user), expiresAt: new Date(Date.now() + INVITE_TTL_SECONDS * 1000) };
  });
}

/**
 * Deletes a user: their sessions end and their grants and tokens are revoked first. Their security events
 * and audit rows stay. The last active administrator cannot be deleted.
 */
export async function deleteUser(services: Services, actor: Actor, ref: string): Promise<UserView> {
  const who = actorFields(actor);
  const target = await findUser(services, ref);
  return audited(services, actor, {
    action: 'users.delete',
    target: { type: 'user', id: target?.id ?? ref },
    before: target && view(target),
    outcome: (user) => ({ event: { type: 'user.deleted', userId: user.id, ...who, details: { ...who.details, email: user.email } } }),
  }, async () => {
    authorize(actor, 'users.write'); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, 'users.write', target);
    const done = await lastAdminGuard(() => services.store.deleteUser(target.id, revokedGrantSeconds(services.config)));
    found(done?.user, ref);
    await logOutApps(services, target.id, done.sessions);
    return view(done.user);
  });
}

/**
 * One link mail of this kind a minute per account, also from administrators (an invitation, a reset link):
 * taken in one conditional write on the shared counter before anything is issued or sent, so a burst of
 * calls on several instances sends one mail. A refusal is a 429 (audited as denied).
 */
export async function oneLinkMailAMinute(services: Services, kind: 'invite' | 'admin-reset' | 'two-step-reset', user: User): Promise<void> {
  if (await services.store.counters.take(`mail:${kind}:${user.id}`, 1, MAIL_INTERVAL_SECONDS)) return;
  throw new OperationError('user.mail_too_soon', `a link went to ${user.email} less than a minute ago: wait, then try again`, 429);
}

/** Runs a change that may take away the last administrator, turning that refusal into a 409. */
export async function lastAdminGuard<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    if (err instanceof LastAdminError) throw new OperationError('user.last_admin', 'this is the last active administrator: make another one first', 409);
    throw err;
  }
}
