/**
 * Challenges waiting for an answer (an SMS code sent, an enrolment begun), bound to one sign-in
 * ("interaction:<uid>") or one account-page session ("account:<hash>"). A secret in them (a TOTP seed
 * during enrolment) is sealed. `take` removes the row in one conditional statement before anything is
 * checked, so an answer is checked against a challenge at most once, by one request. An answer that
 * arrives on another channel (an approval on a phone) resolves the step's status in one conditional write
 * (`resolve`); the page asks for it (`statusOf`) and then answers the step as usual.
 */
import { randomBytes } from 'node:crypto';
import { deleted, type Db } from './db.ts';
import type { Sealer } from './seal.ts';

/** waiting: no answer yet; approved / denied: resolved on another channel. */
export type PendingStatus = 'waiting' | 'approved' | 'denied';

export interface PendingRow {
  id: string;
  status: PendingStatus;
  binding: string;
  /** Null only for a passkey sign-in's challenge, made before anyone says who they are. */
  userId: string | null;
  kind: string;
  authenticatorId: string | undefined;
  data: Record<string, unknown>;
  secret: string | undefined;
  attemptsLeft: number;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface NewPending {
  binding: string;
  userId: string | null;
  kind: string;
  authenticatorId?: string | undefined;
  data: Record<string, unknown>;
  secret?: string | undefined;
  attempts: number;
  ttlSeconds: number;
}

interface Row {
  id: string; binding: string; user_id: string | null; kind: string; authenticator_id: string | null;
  data: Record<string, unknown>; secret_sealed: string | null; attempts_left: number; expires_at: Date; status: PendingStatus;
}

const purpose = (id: string, binding: string) => `pending:${id}:${binding}`;

export function pendingStepsRepository(db: Db, sealer: Sealer) {
  const toPending = (r: Row): PendingRow => ({
    id: r.id, status: r.status, binding: r.binding, userId: r.user_id, kind: r.kind, authenticatorId: r.authenticator_id ?? undefined,
    data: r.data, secret: r.secret_sealed ? sealer.open(r.secret_sealed, purpose(r.id, r.binding)) : undefined,
    attemptsLeft: r.attempts_left, expiresAt: r.expires_at.getTime(),
  });
  return {
    /** Stores a challenge; returns it with its new id. Expiry is counted by the database clock. */
    async put(p: NewPending): Promise<PendingRow> {
      const id = randomBytes(24).toString('base64url');
      const [row] = await db<Row>('pending_steps').insert({
        id, binding: p.binding, user_id: p.userId, kind: p.kind, authenticator_id: p.authenticatorId ?? null,
        data: JSON.stringify(p.data) as unknown as Record<string, unknown>,
        secret_sealed: p.secret === undefined ? null : sealer.seal(p.secret, purpose(id, p.binding)),
        attempts_left: p.attempts,
        expires_at: db.raw(`now() + make_interval(secs => ?)`, [p.ttlSeconds]) as unknown as Date,
      }).returning('*');
      return toPending(row as Row);
    },
    /**
     * Takes the challenge out: the live row with this id and binding for exactly one caller (deleted in
     * the same statement), else undefined (unknown, expired, another sign-in's, or already taken).
     */
    async take(id: string, binding: string): Promise<PendingRow | undefined> {
      // raw: the embedded database's knex dialect answers a delete with a row count, not the returned rows.
      const res = await db.raw('delete from pending_steps where id = ? and binding = ? and expires_at > now() returning *', [id, binding]);
      const row = (res.rows as Row[])[0];
      return row && toPending(row);
    },
    /**
     * Puts a challenge back with its original expiry: after a wrong answer with one attempt less (none
     * when it had one left), or unchanged when the answer was never checked (`spent: false`).
     */
    async putBack(p: PendingRow, { spent = true }: { spent?: boolean } = {}): Promise<PendingRow | undefined> {
      const left = spent ? p.attemptsLeft - 1 : p.attemptsLeft;
      if (left < 1 || p.expiresAt <= Date.now()) return undefined;
      const id = randomBytes(24).toString('base64url');
      const [row] = await db<Row>('pending_steps').insert({
        id, binding: p.binding, user_id: p.userId, kind: p.kind, authenticator_id: p.authenticatorId ?? null,
        data: JSON.stringify(p.data) as unknown as Record<string, unknown>,
        secret_sealed: p.secret === undefined ? null : sealer.seal(p.secret, purpose(id, p.binding)),
        attempts_left: left, expires_at: new Date(p.expiresAt), status: p.status,
      }).returning('*');
      return toPending(row as Row);
    },
    /**
     * Resolves a waiting step as approved or denied, in one conditional write: true for the one caller that
     * did; false when it is gone, expired, not this user's, or resolved already (the first answer stands).
     */
    async resolve(id: string, userId: string, status: Exclude<PendingStatus, 'waiting'>): Promise<boolean> {
      const res = await db.raw(
        `update pending_steps set status = ?, resolved_at = now()
         where id = ? and user_id = ? and status = 'waiting' and expires_at > now() returning id`,
        [status, id, userId],
      );
      return res.rows.length === 1;
    },
    /** What the page sees of a step of its binding: its status, or 'expired' when it is gone or past its time. */
    async statusOf(id: string, binding: string): Promise<PendingStatus | 'expired'> {
      const row = await db<Row>('pending_steps').where({ id, binding }).andWhere('expires_at', '>', db.fn.now()).first('status');
      return row?.status ?? 'expired';
    },
    /** The live challenge of this binding for an authenticator (the code already sent), without taking it. */
    async findLive(binding: string, authenticatorId: string): Promise<PendingRow | undefined> {
      const row = await db<Row>('pending_steps').where({ binding, authenticator_id: authenticatorId })
        .andWhere('expires_at', '>', db.fn.now()).orderBy('created_at', 'desc').first();
      return row && toPending(row);
    },
    /** Ends the challenges of this binding for an authenticator, but `keepId` (the one just sent). */
    async dropForAuthenticator(binding: string, authenticatorId: string, keepId?: string): Promise<number> {
      const q = db('pending_steps').where({ binding, authenticator_id: authenticatorId });
      return deleted((keepId ? q.whereNot({ id: keepId }) : q).delete());
    },
    /** Every challenge of a sign-in or account session ends with it. */
    async dropFor(binding: string): Promise<number> {
      return deleted(db('pending_steps').where({ binding }).delete());
    },
    async purge(): Promise<number> {
      return deleted(db('pending_steps').where('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type PendingStepsRepository = ReturnType<typeof pendingStepsRepository>;
