/**
 * Hashed single-use tokens for links (first-admin setup, email verification, password reset, email change, an invitation).
 * Only a hash is stored; issuing a new token for a (purpose, user) kills the older ones; spending is one
 * conditional write, so exactly one caller can spend a token.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';

export type CodePurpose = 'admin_setup' | 'email_verify' | 'password_reset' | 'email_change' | 'recovery_code' | 'not_me' | 'invite' | 'push_pair'
  | 'two_step_reset' | 'two_step_enrol';

/** Single-use tokens are random (256 bits), so a fast hash is enough; only the hash is stored. */
export const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');

export interface SpentCode {
  id: string;
  userId: string | null;
  /** What the link carries besides the user (e.g. the new address of an email change). */
  data: Record<string, unknown> | null;
}

export function oneTimeCodesRepository(db: Db) {
  return {
    /**
     * Issues a new token for (purpose, user), killing every earlier unused one. Returns the token: random
     * (256 bits) unless the caller made a shorter one to be typed (a phone's pairing code).
     */
    async issue(purpose: CodePurpose, userId: string | null, ttlSeconds: number, data?: Record<string, unknown>, given?: string): Promise<string> {
      const token = given ?? randomBytes(32).toString('base64url');
      await db.transaction(async (trx) => {
        const older = trx('one_time_codes').where({ purpose }).whereNull('used_at');
        await (userId ? older.andWhere({ user_id: userId }) : older.whereNull('user_id')).update({ used_at: trx.fn.now() });
        await trx('one_time_codes').insert({
          id: randomUUID(), purpose, user_id: userId, code_hash: hashToken(token),
          data: data ? JSON.stringify(data) : null,
          expires_at: trx.raw(`now() + make_interval(secs => ?)`, [ttlSeconds]),
        });
      });
      return token;
    },

    /**
     * The live (unused, unexpired) token's owner and data, without spending it; with `maxAttempts`, only
     * while it has attempts left (takeAttempt).
     */
    async peek(purpose: CodePurpose, token: string, maxAttempts?: number): Promise<SpentCode | undefined> {
      const live = db('one_time_codes')
        .where({ purpose, code_hash: hashToken(token) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now());
      const row = await (maxAttempts === undefined ? live : live.andWhere('attempts', '<', maxAttempts)).first('id', 'user_id', 'data');
      return row && { id: row.id as string, userId: row.user_id as string | null, data: row.data as SpentCode['data'] };
    },

    /** Spends the token in one conditional write: its owner and data for exactly one caller, else undefined. */
    async spend(purpose: CodePurpose, token: string): Promise<SpentCode | undefined> {
      const rows = await db('one_time_codes')
        .where({ purpose, code_hash: hashToken(token) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now())
        .update({ used_at: db.fn.now() })
        .returning(['id', 'user_id', 'data']);
      const row = rows[0] as { id: string; user_id: string | null; data: SpentCode['data'] } | undefined;
      return row && { id: row.id, userId: row.user_id, data: row.data };
    },

    /**
     * Takes one attempt from a live token in one conditional write (`attempts < max`), without spending it:
     * its owner and data while attempts are left, else undefined (a link that guards a password form).
     */
    async takeAttempt(purpose: CodePurpose, token: string, max: number): Promise<SpentCode | undefined> {
      const rows = await db('one_time_codes')
        .where({ purpose, code_hash: hashToken(token) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now())
        .andWhere('attempts', '<', max)
        .increment('attempts', 1)
        .returning(['id', 'user_id', 'data']);
      const row = rows[0] as { id: string; user_id: string | null; data: SpentCode['data'] } | undefined;
      return row && { id: row.id, userId: row.user_id, data: row.data };
    },

    /** Kills every unused token of a purpose for a user (e.g. all reset links after a password change). */
    async revokeAll(purpose: CodePurpose, userId: string): Promise<void> {
      await db('one_time_codes').where({ purpose, user_id: userId }).whereNull('used_at').update({ used_at: db.fn.now() });
    },

    /**
     * Replaces a user's whole set of codes of a purpose (recovery codes) in one transaction: the old set is
     * dead the moment the new one exists. Only hashes are stored.
     */
    async replaceSet(purpose: CodePurpose, userId: string, codes: readonly string[], ttlSeconds: number): Promise<void> {
      await db.transaction(async (trx) => {
        await trx('one_time_codes').where({ purpose, user_id: userId }).whereNull('used_at').update({ used_at: trx.fn.now() });
        if (codes.length === 0) return;
        await trx('one_time_codes').insert(codes.map((code) => ({
          id: randomUUID(), purpose, user_id: userId, code_hash: hashToken(code),
          expires_at: trx.raw(`now() + make_interval(secs => ?)`, [ttlSeconds]),
        })));
      });
    },

    /** Spends one code of a user's set in one conditional write: true for exactly one caller. */
    async spendOfUser(purpose: CodePurpose, userId: string, code: string): Promise<boolean> {
      const rows = await db('one_time_codes')
        .where({ purpose, user_id: userId, code_hash: hashToken(code) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now())
        .update({ used_at: db.fn.now() })
        .returning('id');
      return rows.length === 1;
    },

    /** How many live codes of a purpose a user has left. */
    async countLive(purpose: CodePurpose, userId: string): Promise<number> {
      const row = await db('one_time_codes').where({ purpose, user_id: userId }).whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now()).count<{ n: number }>('id as n').first();
      return Number(row?.n ?? 0);
    },

    async purge(): Promise<number> {
      return deleted(db('one_time_codes').where('expires_at', '<=', db.raw(`now() - interval '1 day'`)).delete());
    },
  };
}

export type OneTimeCodesRepository = ReturnType<typeof oneTimeCodesRepository>;
