/** Hashed single-use codes and links (setup link now; email links and SMS codes later). */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';

export type CodePurpose = 'admin_setup';

/** Single-use tokens are random (≥128 bits), so a fast hash is enough; only the hash is stored. */
export const hashToken = (token: string) => createHash('sha256').update(token).digest('base64url');

export function oneTimeCodesRepository(db: Db) {
  return {
    /** Issues a new token for (purpose, user), killing every earlier unused one. Returns the token. */
    async issue(purpose: CodePurpose, userId: string | null, ttlSeconds: number): Promise<string> {
      const token = randomBytes(32).toString('base64url');
      await db.transaction(async (trx) => {
        const older = trx('one_time_codes').where({ purpose }).whereNull('used_at');
        await (userId ? older.andWhere({ user_id: userId }) : older.whereNull('user_id')).update({ used_at: trx.fn.now() });
        await trx('one_time_codes').insert({
          id: randomUUID(), purpose, user_id: userId, code_hash: hashToken(token),
          expires_at: trx.raw(`now() + make_interval(secs => ?)`, [ttlSeconds]),
        });
      });
      return token;
    },

    /** Is the token live (unused, unexpired)? Does not spend it. */
    async peek(purpose: CodePurpose, token: string): Promise<{ id: string; userId: string | null } | undefined> {
      const row = await db('one_time_codes')
        .where({ purpose, code_hash: hashToken(token) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', db.fn.now())
        .first('id', 'user_id');
      return row && { id: row.id as string, userId: row.user_id as string | null };
    },

    /** Spends the token in one conditional write; true for exactly one caller. */
    async spend(purpose: CodePurpose, token: string): Promise<boolean> {
      const trx = db;
      const rows = await trx('one_time_codes')
        .where({ purpose, code_hash: hashToken(token) })
        .whereNull('used_at')
        .andWhere('expires_at', '>', trx.fn.now())
        .update({ used_at: trx.fn.now() })
        .returning('id');
      return rows.length === 1;
    },

    async purge(): Promise<number> {
      return deleted(db('one_time_codes').where('expires_at', '<=', db.raw(`now() - interval '1 day'`)).delete());
    },
  };
}

export type OneTimeCodesRepository = ReturnType<typeof oneTimeCodesRepository>;
