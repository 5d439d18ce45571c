/**
 * The users routes of the admin API: search, one user in detail, invite, a reset link, disable and enable,
 * unlock, delete, sessions (list, end one or all) and the help-desk reset of a lost second factor. Each is
 * one operation (src/admin/operations/); the JSON here is snake_case.
 */
import { z } from 'zod';
import { resetTwoStep } from '../operations/two-step-reset.ts';
import { showUser, type UserDetail } from '../operations/user-detail.ts';
import { disableUser, enableUser, sendResetLink, unlockUser } from '../operations/user-access.ts';
import { listSessions, revokeSessions, type SessionView } from '../operations/user-sessions.ts';
import type { UserView } from '../operations/user-target.ts';
import { deleteUser, inviteUser, searchUsers } from '../operations/users.ts';
import { defineRoute, idPageQuery, iso, isoOrNull, pageById, pageOf, pageQuery, time } from './route.ts';

const userRef = z.strictObject({ id: z.string().min(1).max(320).describe('The user\'s id, or their email address') });

export const userSchema = z.strictObject({
  id: z.string(),
  email: z.string(),
  name: z.string().nullable(),
  roles: z.array(z.string()),
  status: z.enum(['active', 'disabled']),
  created_at: time,
}).meta({ id: 'User' });

const userJson = (u: UserView): z.input<typeof userSchema> => ({ id: u.id, email: u.email, name: u.name, roles: [...u.roles], status: u.status, created_at: iso(u.createdAt) });

const userDetailSchema = userSchema.extend({
  email_verified: z.boolean(),
  locked: z.boolean().describe('Locked after too many failed sign-ins'),
  recovery_pending: z.boolean().describe('A help-desk reset waits for its mailed link'),
  methods: z.array(z.strictObject({
    id: z.string(), kind: z.string(), label: z.string(), possession: z.boolean(), created_at: time, last_used_at: time.nullable(),
  })),
  recovery_codes_left: z.int(),
  events: z.array(z.strictObject({
    type: z.string(), ip: z.string().nullable(), user_agent: z.string().nullable(), details: z.record(z.string(), z.unknown()), created_at: time,
  })),
}).meta({ id: 'UserDetail' });

const detailJson = (u: UserDetail): z.input<typeof userDetailSchema> => ({
  ...userJson(u),
  email_verified: u.emailVerified, locked: u.locked, recovery_pending: u.recoveryPending,
  methods: u.methods.map((m) => ({ id: m.id, kind: m.kind, label: m.label, possession: m.possession, created_at: iso(m.createdAt), last_used_at: isoOrNull(m.lastUsedAt) })),
  recovery_codes_left: u.recoveryCodesLeft,
  events: u.events.map((e) => ({ type: e.type, ip: e.ip, user_agent: e.userAgent, details: e.details, created_at: iso(e.createdAt) })),
});

const sessionSchema = z.strictObject({
  id: z.string(), auth_time: time.nullable(), acr: z.string().nullable(), ip: z.string().nullable(), user_agent: z.string().nullable(),
  last_seen_at: time.nullable(), expires_at: time.nullable(),
}).meta({ id: 'Session' });

const sessionJson = (s: SessionView): z.input<typeof sessionSchema> => ({
  id: s.id, auth_time: isoOrNull(s.authTime), acr: s.acr, ip: s.ip, user_agent: s.userAgent, last_seen_at: isoOrNull(s.lastSeenAt), expires_at: isoOrNull(s.expiresAt),
});

const sessionsEnded = z.strictObject({ sessions_ended: z.int() });

const yesNo = z.enum(['yes', 'no']);

export const userRoutes = [
  defineRoute({
    method: 'get', path: '/users', operationId: 'searchUsers', tag: 'users', permission: 'users.read', action: 'users.search',
    summary: 'Find users by email or name, newest first',
    query: z.strictObject({
      query: z.string().max(320).optional().describe('Part of the email address or the name, in any case'),
      status: z.enum(['active', 'disabled']).optional(),
      two_step: yesNo.optional().describe('yes: only users with a two-step method; no: only those without'),
      locked: yesNo.optional().describe('yes: only users locked after failed sign-ins; no: only those not locked'),
      ...pageQuery,
    }),
    status: 200, response: pageOf(userSchema),
    async handle({ services, actor, query }) {
      const page = await searchUsers(services, actor, { query: query.query, status: query.status, twoStep: query.two_step, locked: query.locked, limit: query.limit, cursor: query.cursor });
      return { items: page.items.map(userJson), next_cursor: page.nextCursor };
    },
  }),
  defineRoute({
    method: 'post', path: '/users', operationId: 'inviteUser', tag: 'users', permission: 'users.write', action: 'users.invite',
    summary: 'Create a user by invitation: a single-use link (24 hours) is mailed to them to choose a password',
    description: 'Nobody but the user sees the link or the password. An API client never grants roles.',
    body: z.strictObject({ email: z.string().max(320), name: z.string().max(200).optional() }),
    status: 201, response: userSchema.extend({ expires_at: time.describe('When the link stops working') }).meta({ id: 'Invitation' }),
    async handle({ services, actor, body }) {
      const user = await inviteUser(services, actor, { email: body.email, name: body.name });
      return { ...userJson(user), expires_at: iso(user.expiresAt) };
    },
  }),
  defineRoute({
    method: 'get', path: '/users/{id}', operationId: 'getUser', tag: 'users', permission: 'users.read', action: 'users.show',
    summary: 'One user: their methods with their last use, whether they are locked, their recent security activity',
    params: userRef, status: 200, response: userDetailSchema,
    async handle({ services, actor, params }) {
      return detailJson(await showUser(services, actor, params.id));
    },
  }),
  defineRoute({
    method: 'delete', path: '/users/{id}', operationId: 'deleteUser', tag: 'users', permission: 'users.write', action: 'users.delete',
    summary: 'Delete a user, after ending their sessions and tokens; their security events and audit rows stay',
    params: userRef, status: 204,
    async handle({ services, actor, params }) {
      await deleteUser(services, actor, params.id);
    },
  }),
  defineRoute({
    method: 'post', path: '/users/{id}/reset-link', operationId: 'sendResetLink', tag: 'users', permission: 'users.write', action: 'users.reset_link',
    summary: 'Mail the user a password-reset link (at most one a minute)',
    params: userRef, status: 200, response: userSchema,
    async handle({ services, actor, params }) {
      return userJson(await sendResetLink(services, actor, params.id));
    },
  }),
  defineRoute({
    method: 'post', path: '/users/{id}/disable', operationId: 'disableUser', tag: 'users', permission: 'users.write', action: 'users.disable',
    summary: 'Disable a user: every session, grant, refresh and access token ends at once',
    params: userRef, status: 200, response: userSchema.extend(sessionsEnded.shape).meta({ id: 'DisabledUser' }),
    async handle({ services, actor, params }) {
      const user = await disableUser(services, actor, params.id);
      return { ...userJson(user), sessions_ended: user.sessionsEnded };
    },
  }),
  defineRoute({
    method: 'post', path: '/users/{id}/enable', operationId: 'enableUser', tag: 'users', permission: 'users.write', action: 'users.enable',
    summary: 'Enable a disabled user again',
    params: userRef, status: 200, response: userSchema,
    async handle({ services, actor, params }) {
      return userJson(await enableUser(services, actor, params.id));
    },
  }),
  defineRoute({
    method: 'post', path: '/users/{id}/unlock', operationId: 'unlockUser', tag: 'users', permission: 'users.write', action: 'users.unlock',
    summary: 'Clear the user\'s failed sign-ins and the lock they led to',
    params: userRef, status: 200, response: userSchema.extend({ was_locked: z.boolean() }).meta({ id: 'UnlockedUser' }),
    async handle({ services, actor, params }) {
      const user = await unlockUser(services, actor, params.id);
      return { ...userJson(user), was_locked: user.wasLocked };
    },
  }),
  defineRoute({
    method: 'get', path: '/users/{id}/sessions', operationId: 'listSessions', tag: 'users', permission: 'users.read', action: 'users.sessions',
    summary: 'The user\'s sign-in sessions',
    params: userRef, query: z.strictObject({ ...idPageQuery }), status: 200, response: pageOf(sessionSchema),
    async handle({ services, actor, params, query }) {
      const page = pageById(await listSessions(services, actor, params.id), (s) => s.id, query);
      return { items: page.items.map(sessionJson), next_cursor: page.next_cursor };
    },
  }),
  defineRoute({
    method: 'delete', path: '/users/{id}/sessions', operationId: 'revokeAllSessions', tag: 'users', permission: 'users.write', action: 'users.revoke_sessions',
    summary: 'Sign the user out everywhere: every session, grant and token of the account ends',
    params: userRef, status: 200, response: sessionsEnded,
    async handle({ services, actor, params }) {
      return { sessions_ended: (await revokeSessions(services, actor, params.id)).sessionsEnded };
    },
  }),
  defineRoute({
    method: 'delete', path: '/users/{id}/sessions/{session_id}', operationId: 'revokeSession', tag: 'users', permission: 'users.write', action: 'users.revoke_sessions',
    summary: 'End one of the user\'s sessions (its grants revoked, offline access included)',
    params: userRef.extend({ session_id: z.string().min(1).max(200) }), status: 200, response: sessionsEnded,
    async handle({ services, actor, params }) {
      return { sessions_ended: (await revokeSessions(services, actor, params.id, params.session_id)).sessionsEnded };
    },
  }),
  defineRoute({
    method: 'post', path: '/users/{id}/two-step-reset', operationId: 'resetTwoStep', tag: 'users', permission: 'users.write', action: 'users.reset_two_step',
    summary: 'Help-desk reset of a lost second factor, after re-proving who the user is',
    description: 'Every session ends, the chosen methods are removed and a single-use link (24 hours) goes to the confirmed address; '
      + 'it asks for the password, then a new method and new recovery codes. Refused on an account that holds a console role.',
    params: userRef,
    body: z.strictObject({
      methods: z.union([z.literal('all'), z.array(z.string().min(1).max(200)).min(1).max(50)]).describe('The ids of the methods to remove (GET /users/{id}), or "all"'),
      proof: z.string().max(500).describe('How the caller\'s identity was re-proved ("video call + ID document")'),
      ticket: z.string().max(200).describe('The ticket reference or a note'),
    }),
    status: 200,
    response: userSchema.extend({
      removed: z.array(z.strictObject({ id: z.string(), kind: z.string(), label: z.string() })),
      sessions_ended: z.int(),
      notified: z.array(z.string()).describe('Every address told of the reset; the link went to the first'),
      link_expires_at: time,
    }).meta({ id: 'TwoStepReset' }),
    async handle({ services, actor, params, body }) {
      const r = await resetTwoStep(services, actor, params.id, { methods: body.methods, proof: body.proof, ticket: body.ticket });
      return { ...userJson(r), removed: r.removed, sessions_ended: r.sessionsEnded, notified: r.notified, link_expires_at: iso(r.linkExpiresAt) };
    },
  }),
];
