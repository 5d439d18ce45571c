/**
 * Shared counters with expiry (throttling): one atomic statement per increment, so limits hold across
 * instances and parallel requests. A counter past its expiry starts again from 1.
 */
import { deleted, type Db } from './db.ts';

export interface Counter {
  count: number;
  /** When the counter was last incremented. */
  updatedAt: Date;
  expiresAt: Date;
}

export function countersRepository(db: Db) {
  return {
    async increment(key: string, ttlSeconds: number): Promise<Counter> {
      const res = await db.raw(
        `insert into counters (key, count, expires_at) values (?, 1, now() + make_interval(secs => ?))
         on conflict (key) do update set
           count = case when counters.expires_at <= now() then 1 else counters.count + 1 end,
           updated_at = now(),
           expires_at = now() + make_interval(secs => ?)
         returning count, updated_at, expires_at`,
        [key, ttlSeconds, ttlSeconds],
      );
      const row = res.rows[0] as { count: number; updated_at: Date; expires_at: Date };
      return { count: row.count, updatedAt: row.updated_at, expiresAt: row.expires_at };
    },
    /**
     * Counts one use of a fixed-window quota in one atomic statement: true when it fits (at most `max` per
     * `windowSeconds`, the window starting at the first use), false and nothing counted when it is used up.
     */
    async take(key: string, max: number, windowSeconds: number): Promise<boolean> {
      const res = await db.raw(
        `insert into counters (key, count, expires_at) values (?, 1, now() + make_interval(secs => ?))
         on conflict (key) do update set
           count = case when counters.expires_at <= now() then 1 else counters.count + 1 end,
           updated_at = now(),
           expires_at = case when counters.expires_at <= now() then excluded.expires_at else counters.expires_at end
         where counters.expires_at <= now() or counters.count < ?
         returning count`,
        [key, windowSeconds, max],
      );
      return res.rows.length === 1;
    },
    async get(keys: string[]): Promise<Map<string, Counter>> {
      if (keys.length === 0) return new Map();
      const rows = await db('counters').whereIn('key', keys).andWhere('expires_at', '>', db.fn.now())
        .select('key', 'count', 'updated_at', 'expires_at');
      return new Map(rows.map((r) => [r.key as string, { count: r.count as number, updatedAt: r.updated_at as Date, expiresAt: r.expires_at as Date }]));
    },
    async reset(keys: string[]): Promise<void> {
      if (keys.length) await db('counters').whereIn('key', keys).delete();
    },
    async purge(): Promise<number> {
      return deleted(db('counters').where('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type CountersRepository = ReturnType<typeof countersRepository>;
