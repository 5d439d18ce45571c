/** Users: the account record behind `sub`. */
import { randomUUID } from 'node:crypto';
import type { Db } from './db.ts';

export type UserStatus = 'active' | 'disabled';
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

interface Row {
  id: string; email: string; email_normalized: string; email_verified_at: Date | null; name: string | null;
  given_name: string | null; family_name: string | null; locale: string | null; language: string | null; phone_number: string | null;
  phone_verified_at: Date | null; address: Address | null; password_hash: string | null; status: UserStatus;
  verification_preference: VerificationPreference; roles: string[]; created_at: Date; updated_at: Date;
}

/** Case-insensitive identity of an email address. */
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

function toUser(r: Row): User {
  return {
    id: r.id, email: r.email, emailVerifiedAt: r.email_verified_at, name: r.name, givenName: r.given_name,
    familyName: r.family_name, locale: r.locale, language: r.language, phoneNumber: r.phone_number, phoneVerifiedAt: r.phone_verified_at,
    address: r.address, passwordHash: r.password_hash, status: r.status,
    verificationPreference: r.verification_preference, roles: r.roles, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class DuplicateEmailError extends Error {
  override name = 'DuplicateEmailError';
}

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

    async setStatus(id: string, status: UserStatus): Promise<void> {
      await db('users').where({ id }).update({ status, updated_at: db.fn.now() });
    },

    async hasAdmin(): Promise<boolean> {
      const row = await db('users').whereRaw(`roles @> '["admin"]'::jsonb`).first('id');
      return !!row;
    },
  };
}

export type UsersRepository = ReturnType<typeof usersRepository>;
