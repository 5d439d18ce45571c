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
  /** What resolved it on the other channel (the device that approved or denied a prompt), when something did. */
  resolvedBy: string | undefined;
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
  data: Record<string, unknown>; secret_sealed: string | null; attempts_left: number; expires_at: Date; status: PendingStatus; resolved_by: string | null;
}

const purpose = (id: string, binding: string) => `pending:${id}:${binding}`;

export function pendingStepsRepository(db: Db, sealer: Sealer) {
  const toPending = (r: Row): PendingRow => ({
    id: r.id, status: r.status, binding: r.binding, userId: r.user_id, kind: r.kind, authenticatorId: r.authenticator_id ?? undefined,
    data: r.data, secret: r.secret_sealed ? sealer.open(r.secret_sealed, purpose(r.id, r.binding)) : undefined,
    attemptsLeft: r.attempts_left, expiresAt: r.expires_at.getTime(), resolvedBy: r.resolved_by ?? undefined,
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
        attempts_left: left, expires_at: new Date(p.expiresAt), status: p.status, resolved_by: p.resolvedBy ?? null,
      }).returning('*');
      return toPending(row as Row);
    },
    /**
     * Resolves a waiting step as approved or denied, in one conditional write: true for the one caller that
     * did; false when it is gone, expired, not this user's, or resolved already (the first answer stands).
     */
    async resolve(id: string, userId: string, status: Exclude<PendingStatus, 'waiting'>, by?: string): Promise<boolean> {
      const res = await db.raw(
        `update pending_steps set status = ?, resolved_at = now(), resolved_by = ?
         where id = ? and user_id = ? and status = 'waiting' and expires_at > now() returning id`,
        [status, by ?? null, id, userId],
      );
      return res.rows.length === 1;
    },
    /**
     * The live steps of a kind waiting for this user's answer on another channel (a phone's prompts), found
     * by the id their data carries (`data.promptId`: stable while the step is put back under new ids).
     */
    async waitingFor(userId: string, kind: string, promptId?: string): Promise<PendingRow[]> {
      const q = db<Row>('pending_steps').where({ user_id: userId, kind, status: 'waiting' }).andWhere('expires_at', '>', db.fn.now());
      if (promptId !== undefined) q.andWhereRaw(`data->>'promptId' = ?`, [promptId]);
      return (await q.orderBy('created_at', 'desc')).map(toPending);
    },
    /**
     * Spends one attempt of a waiting step found by its `data.promptId`, in one conditional write before the
     * answer is checked (a number typed on a phone): the step with its attempts left after this one, or
     * undefined when it is gone, answered, expired or out of attempts.
     */
    async spendAttempt(userId: string, kind: string, promptId: string): Promise<PendingRow | undefined> {
      const res = await db.raw(
        `update pending_steps set attempts_left = attempts_left - 1
         where user_id = ? and kind = ? and data->>'promptId' = ? and status = 'waiting' and attempts_left > 0 and expires_at > now()
         returning *`,
        [userId, kind, promptId],
      );
      const row = (res.rows as Row[])[0];
      return row && toPending(row);
    },
    /**
     * Ends a user's live waiting steps of a kind (one prompt per account: a new one replaces the old), but
     * those whose `data.purpose` is `keepPurpose` (a pairing's test prompt). Returns how many ended.
     */
    async dropWaitingOf(userId: string, kind: string, keepPurpose?: string): Promise<number> {
      // Only prompts (a promptId in their data): the account page's pairing, a step of the same kind, stays.
      const q = db('pending_steps').where({ user_id: userId, kind, status: 'waiting' }).andWhere('expires_at', '>', db.fn.now())
        .andWhereRaw(`data->>'promptId' is not null`);
      if (keepPurpose !== undefined) q.andWhereRaw(`coalesce(data->>'purpose', '') <> ?`, [keepPurpose]);
      return deleted(q.delete());
    },
    /**
     * A step of a kind found by its `data.promptId`, whatever its status and even past its time (until the
     * purge): why a phone's answer comes too late (answered, expired) rather than to nothing.
     */
    async findPrompt(userId: string, kind: string, promptId: string): Promise<PendingRow | undefined> {
      const row = await db<Row>('pending_steps').where({ user_id: userId, kind }).andWhereRaw(`data->>'promptId' = ?`, [promptId])
        .orderBy('created_at', 'desc').first();
      return row && toPending(row);
    },
    /** A live step of this binding, without taking it (a page asking how far an enrolment on another channel got). */
    async find(id: string, binding: string): Promise<PendingRow | undefined> {
      const row = await db<Row>('pending_steps').where({ id, binding }).andWhere('expires_at', '>', db.fn.now()).first();
      return row && toPending(row);
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
    /** Every challenge of a sign-in or account session ends with it (but `keepId`, when given). */
    async dropFor(binding: string, keepId?: string): Promise<number> {
      const q = db('pending_steps').where({ binding });
      return deleted((keepId ? q.whereNot({ id: keepId }) : q).delete());
    },
    /**
     * A step the person said no to on another channel ("Cancel" or "This wasn't me" on a phone; not one a
     * phone's wrong numbers used up) is kept `seconds` more, so the sign-in it belonged to can still learn
     * that it was denied (`deniedIn`) after the step's own time.
     */
    async keepDenied(id: string, seconds: number): Promise<void> {
      await db.raw(
        `update pending_steps set expires_at = greatest(expires_at, now() + make_interval(secs => ?))
         where id = ? and status = 'denied'`,
        [seconds, id],
      );
    },
    /** Whether the person said no to a step of this binding on another channel (see keepDenied). */
    async deniedIn(binding: string): Promise<boolean> {
      const row = await db('pending_steps').where({ binding, status: 'denied' }).andWhere('attempts_left', '>', 0)
        .andWhere('expires_at', '>', db.fn.now()).first('id');
      return !!row;
    },
    async purge(): Promise<number> {
      return deleted(db('pending_steps').where('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type PendingStepsRepository = ReturnType<typeof pendingStepsRepository>;
