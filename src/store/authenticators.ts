/**
 * Enrolled two-step methods. A secret needed in the clear later (a TOTP seed) is sealed with the row's id
 * as associated data, so it cannot be moved to another row; a secret only ever compared (a security
 * answer) is kept as a hash. TOTP replay protection is one conditional write on `last_step`.
 */
import { randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';
import type { Sealer } from './seal.ts';

export interface Authenticator {
  id: string;
  userId: string;
  kind: string;
  label: string;
  data: Record<string, unknown>;
  /** The opened secret (a TOTP seed), or undefined. */
  secret: string | undefined;
  secretHash: string | null;
  publicKey: string | null;
  externalId: string | null;
  lastStep: number | null;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface NewAuthenticator {
  userId: string;
  kind: string;
  label: string;
  data?: Record<string, unknown>;
  secret?: string;
  secretHash?: string;
  publicKey?: string;
  externalId?: string;
  lastStep?: number;
}

interface Row {
  id: string; user_id: string; kind: string; label: string; data: Record<string, unknown>; secret_sealed: string | null;
  secret_hash: string | null; public_key: string | null; external_id: string | null; last_step: number | null;
  created_at: Date; last_used_at: Date | null;
}

export class DuplicateCredentialError extends Error {
  override name = 'DuplicateCredentialError';
}

const purpose = (id: string) => `authenticator:${id}`;

export function authenticatorsRepository(db: Db, sealer: Sealer) {
  const toAuthenticator = (r: Row): Authenticator => ({
    id: r.id, userId: r.user_id, kind: r.kind, label: r.label, data: r.data,
    secret: r.secret_sealed ? sealer.open(r.secret_sealed, purpose(r.id)) : undefined,
    secretHash: r.secret_hash, publicKey: r.public_key, externalId: r.external_id,
    lastStep: r.last_step === null ? null : Number(r.last_step), createdAt: r.created_at, lastUsedAt: r.last_used_at,
  });
  return {
    /** The user's methods, oldest first. */
    async listForUser(userId: string): Promise<Authenticator[]> {
      const rows = await db<Row>('authenticators').where({ user_id: userId }).orderBy([{ column: 'created_at' }, { column: 'id' }]);
      return rows.map(toAuthenticator);
    },
    async find(userId: string, id: string): Promise<Authenticator | undefined> {
      const row = await db<Row>('authenticators').where({ user_id: userId, id }).first();
      return row && toAuthenticator(row);
    },
    async findByExternalId(externalId: string): Promise<Authenticator | undefined> {
      const row = await db<Row>('authenticators').where({ external_id: externalId }).first();
      return row && toAuthenticator(row);
    },
    /** Throws DuplicateCredentialError when the external id is taken. */
    async insert(a: NewAuthenticator): Promise<Authenticator> {
      const id = randomUUID();
      try {
        const [row] = await db<Row>('authenticators').insert({
          id, user_id: a.userId, kind: a.kind, label: a.label,
          data: JSON.stringify(a.data ?? {}) as unknown as Record<string, unknown>,
          secret_sealed: a.secret === undefined ? null : sealer.seal(a.secret, purpose(id)),
          secret_hash: a.secretHash ?? null, public_key: a.publicKey ?? null, external_id: a.externalId ?? null,
          last_step: a.lastStep ?? null,
        }).returning('*');
        return toAuthenticator(row as Row);
      } catch (err) {
        if ((err as { code?: string }).code === '23505') throw new DuplicateCredentialError('credential already registered');
        throw err;
      }
    },
    async rename(userId: string, id: string, label: string): Promise<boolean> {
      return (await db('authenticators').where({ user_id: userId, id }).update({ label })) > 0;
    },
    /** Replaces what a method checks against (a new question and answer), keeping its id. */
    async replace(userId: string, id: string, change: { label?: string; data?: Record<string, unknown>; secretHash?: string }): Promise<boolean> {
      const patch: Record<string, unknown> = {};
      if (change.label !== undefined) patch.label = change.label;
      if (change.data !== undefined) patch.data = JSON.stringify(change.data);
      if (change.secretHash !== undefined) patch.secret_hash = change.secretHash;
      return (await db('authenticators').where({ user_id: userId, id }).update(patch)) > 0;
    },
    async remove(userId: string, id: string): Promise<boolean> {
      return (await deleted(db('authenticators').where({ user_id: userId, id }).delete())) > 0;
    },
    async removeKind(userId: string, kind: string): Promise<number> {
      return deleted(db('authenticators').where({ user_id: userId, kind }).delete());
    },
    async markUsed(id: string): Promise<void> {
      await db('authenticators').where({ id }).update({ last_used_at: db.fn.now() });
    },
    /**
     * Spends a TOTP time step: true only for the one caller that moved `last_step` forward to `step`
     * (a step once accepted, and every step before it, is never accepted again).
     */
    async advanceStep(id: string, step: number): Promise<boolean> {
      const rows = await db('authenticators')
        .where({ id })
        .andWhere((w) => w.whereNull('last_step').orWhere('last_step', '<', step))
        .update({ last_step: step, last_used_at: db.fn.now() })
        .returning('id');
      return rows.length === 1;
    },
    /**
     * WebAuthn: moves the signature counter and the flags forward in one conditional write: true only for
     * the one caller that found the counter still at `from` (two sign-ins with one counter value: one wins).
     */
    async updateData(id: string, data: Record<string, unknown>, from: number): Promise<boolean> {
      const rows = await db('authenticators')
        .where({ id })
        .andWhereRaw(`data->>'counter' = ?`, [String(from)])
        .update({ data: JSON.stringify(data), last_used_at: db.fn.now() })
        .returning('id');
      return rows.length === 1;
    },
  };
}

export type AuthenticatorsRepository = ReturnType<typeof authenticatorsRepository>;
