/** Users: the account record behind `sub`. */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.ts';

export type UserStatus = 'active' | 'disabled';

/**
 * The console's roles, kept on the user: `admin` does everything, `helpdesk` manages users (never one that
 * holds a role), `auditor` reads (the audit log included). Migration 011 keeps `roles` to these.
 */
export const ROLES = ['admin', 'helpdesk', 'auditor'] as const;
export type Role = (typeof ROLES)[number];
export const isRole = (value: unknown): value is Role => typeof value === 'string' && (ROLES as readonly string[]).includes(value);
export type VerificationPreference = 'always' | 'risky';

export interface Address {
  formatted?: string; street_address?: string; locality?: string; region?: string; postal_code?: string; country?: string;
}

export interface User {
  id: string;
  email: string;
  emailVerifiedAt: Date | null;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  locale: string | null;
  /** The language Latchkey speaks to them in mails (a locales/ file's name), from their last sign-in or choice. */
  language: string | null;
  phoneNumber: string | null;
  phoneVerifiedAt: Date | null;
  address: Address | null;
  passwordHash: string | null;
  status: UserStatus;
  verificationPreference: VerificationPreference;
  roles: string[];
  /** A help-desk reset of a lost second factor waits for its mailed link: no sign-in completes meanwhile. */
  recoveryPendingAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewUser {
  email: string;
  name?: string | null;
  passwordHash: string | null;
  roles?: string[];
  emailVerified?: boolean;
  /** The language of the sign-up (i18n.ts), for their mails. */
  language?: string | null;
}

/** A `users` row as the database answers it (oidc-payloads.ts reads one along with a token). */
export interface Row {
  id: string; email: string; email_normalized: string; email_verified_at: Date | null; name: string | null;
  given_name: string | null; family_name: string | null; locale: string | null; language: string | null; phone_number: string | null;
  phone_verified_at: Date | null; address: Address | null; password_hash: string | null; status: UserStatus;
  verification_preference: VerificationPreference; roles: string[]; recovery_pending_at: Date | null; created_at: Date; updated_at: Date;
}

/**
 * Every column of a `users` row, named: a prepared statement that reads a user lists them rather than
 * `u.*`, whose result type PostgreSQL fixes at preparation (a migration adding a column would then fail
 * every later run of it on that connection: "cached plan must not change result type").
 */
export const USER_COLUMNS = [
  'id', 'email', 'email_normalized', 'email_verified_at', 'name', 'given_name', 'family_name', 'locale', 'language',
  'phone_number', 'phone_verified_at', 'address', 'password_hash', 'status', 'verification_preference', 'roles',
  'recovery_pending_at', 'created_at', 'updated_at',
] as const satisfies readonly (keyof Row)[];
// Every key of Row is listed (a compile error names the one missing).
const allUserColumns: Record<Exclude<keyof Row, (typeof USER_COLUMNS)[number]>, never> = {};
void allUserColumns;

/** Case-insensitive identity of an email address. */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export function toUser(r: Row): User {
  return {
    id: r.id, email: r.email, emailVerifiedAt: r.email_verified_at, name: r.name, givenName: r.given_name,
    familyName: r.family_name, locale: r.locale, language: r.language, phoneNumber: r.phone_number, phoneVerifiedAt: r.phone_verified_at,
    address: r.address, passwordHash: r.password_hash, status: r.status,
    verificationPreference: r.verification_preference, roles: r.roles, recoveryPendingAt: r.recovery_pending_at ?? null,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class DuplicateEmailError extends Error {
  override name = 'DuplicateEmailError';
}

/** The change would leave no active administrator (demoting, disabling or deleting the last one). */
export class LastAdminError extends Error {
  override name = 'LastAdminError';
}

/** What administrators search users by: every filter optional, newest first, a page after `after`. */
export interface UserSearch {
  /** Part of the email address or the name, in any case. */
  text?: string | undefined;
  status?: UserStatus | undefined;
  /** Has (or has not) a method of one of these kinds (the possession methods: factors/index.ts says which). */
  twoStep?: { has: boolean; kinds: readonly string[] } | undefined;
  /** Is (or is not) locked after `lockAfter` failures: the failure counter of security/attempts.ts. */
  locked?: { is: boolean; lockAfter: number } | undefined;
  limit: number;
  /** The last row of the page before (its `position`). */
  after?: string | undefined;
}

/** A found user and where it sits in the order (created_at to the microsecond, then id), for the next page. */
export interface FoundUser {
  user: User;
  position: string;
}

const ADMIN = `roles @> '["admin"]'::jsonb`;
/** An administrator who can act: one with a password (an invitee who never chose one cannot sign in yet). */
const USABLE_ADMIN = `${ADMIN} and password_hash is not null`;
/** security/attempts.ts's accountKey, in SQL: `acct:` + base64url(sha256(normalised email)). */
const ACCOUNT_KEY = `'acct:' || rtrim(translate(encode(sha256(convert_to(users.email_normalized, 'UTF8')), 'base64'), '+/', '-_'), '=')`;

export function usersRepository(db: Db) {
  return {
    async create(input: NewUser): Promise<User> {
      try {
        const [row] = await db<Row>('users')
          .insert({
            id: randomUUID(),
            email: input.email.trim(),
            email_normalized: normalizeEmail(input.email),
            email_verified_at: input.emailVerified ? new Date() : null,
            name: input.name ?? null,
            password_hash: input.passwordHash,
            language: input.language ?? null,
            roles: JSON.stringify(input.roles ?? []) as unknown as string[],
          })
          .returning('*');
        return toUser(row as Row);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new DuplicateEmailError('email already registered');
        throw err;
      }
    },

    async findById(id: string): Promise<User | undefined> {
      const row = await db<Row>('users').where({ id }).first();
      return row && toUser(row);
    },

    async findByEmail(email: string): Promise<User | undefined> {
      const row = await db<Row>('users').where({ email_normalized: normalizeEmail(email) }).first();
      return row && toUser(row);
    },

    async list(): Promise<User[]> {
      const rows = await db<Row>('users').orderBy('created_at', 'asc');
      return rows.map(toUser);
    },

    async setPassword(id: string, passwordHash: string): Promise<void> {
      await db('users').where({ id }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
    },

    async markEmailVerified(id: string, email: string): Promise<boolean> {
      const n = await db('users').where({ id, email_normalized: normalizeEmail(email) }).whereNull('email_verified_at')
        .update({ email_verified_at: db.fn.now(), updated_at: db.fn.now() });
      return n > 0;
    },

    /** Changes the email (verified by the caller's link). Throws DuplicateEmailError when another account has it. */
    async changeEmail(id: string, email: string): Promise<void> {
      try {
        await db('users').where({ id }).update({
          email: email.trim(), email_normalized: normalizeEmail(email), email_verified_at: db.fn.now(), updated_at: db.fn.now(),
        });
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new DuplicateEmailError('email already registered');
        throw err;
      }
    },

    async updateProfile(id: string, profile: { name?: string | null; givenName?: string | null; familyName?: string | null }): Promise<void> {
      const patch: Record<string, unknown> = { updated_at: db.fn.now() };
      if (profile.name !== undefined) patch.name = profile.name;
      if (profile.givenName !== undefined) patch.given_name = profile.givenName;
      if (profile.familyName !== undefined) patch.family_name = profile.familyName;
      await db('users').where({ id }).update(patch);
    },

    async setVerificationPreference(id: string, preference: VerificationPreference): Promise<void> {
      await db('users').where({ id }).update({ verification_preference: preference, updated_at: db.fn.now() });
    },

    /** Remembers the language to mail them in: one write, and only when it changed (not a profile change: updated_at stays). */
    async setLanguage(id: string, language: string): Promise<void> {
      await db('users').where({ id }).andWhere((w) => w.whereNull('language').orWhereNot('language', language)).update({ language });
    },

    /** A help-desk reset began (`true`) or its recovery made a new method (`false`). */
    async setRecoveryPending(id: string, pending: boolean): Promise<void> {
      await db('users').where({ id }).update({ recovery_pending_at: pending ? db.fn.now() : null, updated_at: db.fn.now() });
    },
    async setStatus(id: string, status: UserStatus): Promise<void> {
      await db('users').where({ id }).update({ status, updated_at: db.fn.now() });
    },

    async hasAdmin(): Promise<boolean> {
      const row = await db('users').whereRaw(USABLE_ADMIN).first('id');
      return !!row;
    },

    /**
     * Users matching every filter given, newest first, at most `limit`, after the position `after`
     * (keyset: rows added meanwhile never shift a later page). A position is `<created_at>|<id>`.
     */
    async search(s: UserSearch): Promise<FoundUser[]> {
      const q = db<Row>('users').select('*', db.raw(`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position_time`));
      const text = s.text?.trim() ? normalizeEmail(s.text) : undefined;
      if (text) q.andWhere((w) => w.whereRaw('strpos(email_normalized, ?) > 0', [text]).orWhereRaw(`strpos(lower(coalesce(name, '')), ?) > 0`, [text]));
      if (s.status) q.andWhere({ status: s.status });
      if (s.twoStep) {
        const methods = db('authenticators as a').select(db.raw('1')).whereRaw('a.user_id = users.id').whereIn('a.kind', [...s.twoStep.kinds, '']);
        if (s.twoStep.has) q.whereExists(methods);
        else q.whereNotExists(methods);
      }
      if (s.locked) {
        const lock = db('counters as c').select(db.raw('1')).whereRaw(`c.key = ${ACCOUNT_KEY}`)
          .andWhere('c.count', '>=', s.locked.lockAfter).andWhere('c.expires_at', '>', db.fn.now());
        if (s.locked.is) q.whereExists(lock);
        else q.whereNotExists(lock);
      }
      if (s.after) {
        const cut = s.after.indexOf('|');
        q.andWhereRaw('(created_at, id) < (?::timestamptz, ?)', [s.after.slice(0, cut), s.after.slice(cut + 1)]);
      }
      const rows = (await q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(s.limit)) as (Row & { position_time: string })[];
      return rows.map((r) => ({ user: toUser(r), position: `${r.position_time}|${r.id}` }));
    },

    /**
     * Grants and revokes roles in one transaction. Taking `admin` away locks every active administrator's
     * row first (keepAnAdmin), so two demotions at once cannot both pass. Undefined when there is no such user.
     */
    async changeRoles(id: string, change: { grant?: readonly Role[]; revoke?: readonly Role[] }): Promise<{ before: User; after: User } | undefined> {
      return db.transaction(async (trx) => {
        if (change.revoke?.includes('admin')) await keepAnAdmin(trx, id);
        const row = await trx<Row>('users').where({ id }).forUpdate().first();
        if (!row) return undefined;
        const roles = ROLES.filter((r) => (row.roles.includes(r) || change.grant?.includes(r)) && !change.revoke?.includes(r));
        const [updated] = await trx<Row>('users').where({ id })
          .update({ roles: JSON.stringify(roles) as unknown as string[], updated_at: trx.fn.now() }).returning('*');
        return { before: toUser(row), after: toUser(updated as Row) };
      });
    },

    /** Fails with LastAdminError when `id` is the last active administrator (see keepAnAdmin). Inside a transaction. */
    keepAnAdmin: (id: string) => keepAnAdmin(db, id),

    /** Deletes the user (authenticators, devices, codes go with it; security events and the audit log stay). */
    async remove(id: string): Promise<boolean> {
      return (await db('users').where({ id }).delete()) > 0;
    },
  };
}

/**
 * Locks the rows of every active administrator (in id order, so concurrent callers queue without a
 * deadlock) and fails when `id` is the only one: the caller is about to demote, disable or delete it. A
 * caller that waited re-reads the rows a committed demotion changed, so the second of two parallel
 * demotions of the last two administrators finds one left and is refused. Call it inside a transaction.
 */
async function keepAnAdmin(trx: Db, id: string): Promise<void> {
  const admins = (await trx('users').whereRaw(USABLE_ADMIN).andWhere({ status: 'active' }).orderBy('id').forUpdate().select('id')) as { id: string }[];
  if (admins.length === 1 && admins[0]!.id === id) throw new LastAdminError('the last administrator');
}

export type UsersRepository = ReturnType<typeof usersRepository>;
