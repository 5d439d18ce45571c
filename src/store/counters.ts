/**
 * Shared counters with expiry (throttling): one conditional statement per use, so limits hold across
 * instances and parallel requests. A counter past its expiry starts again from 1.
 */
import { deleteExpired, type Db } from './db.ts';

export interface Counter {
  count: number;
  /** When the counter was last incremented. */
  updatedAt: Date;
  expiresAt: Date;
}

/** How `reserve` counts an attempt: refused from `max` on; from `free` on, 2^(count - free) s apart (at most `maxDelaySeconds`). */
export interface ReserveRule { max: number; free?: number; maxDelaySeconds?: number }
export interface Reservation { key: string; ttlSeconds: number; rule: ReserveRule }

/**
 * `reserve`'s conditional write, with the row to insert given by `source` (its key and time to live are
 * the first two bindings, then `reserveBindings`): the counter goes up only when the attempt may be made now.
 */
const reserveSql = (source: string) => `insert into counters (key, count, expires_at) ${source}
   on conflict (key) do update set
     count = case when counters.expires_at <= now() then 1 else counters.count + 1 end,
     updated_at = now(),
     expires_at = excluded.expires_at
   where counters.expires_at <= now()
      or (counters.count < ?::int and (counters.count < ?::int
          or counters.updated_at + make_interval(secs => least(?::float8, power(2::float8, (counters.count - ?::int)::float8))) <= now()))`;
const reserveBindings = (rule: ReserveRule) => {
  const free = rule.free ?? rule.max;
  return [rule.max, free, rule.maxDelaySeconds ?? 0, free];
};

export function countersRepository(db: Db) {
  /** `release` of several counters (distinct keys) in one statement. */
  const releaseAll = async (counters: readonly { key: string; maxDelaySeconds: number }[]): Promise<void> => {
    if (counters.length === 0) return;
    await db.raw(
      `update counters set count = counters.count - 1,
         updated_at = least(counters.updated_at, now() - make_interval(secs => given.delay))
         from (values ${counters.map(() => '(?::text, ?::float8)').join(', ')}) as given (key, delay)
       where counters.key = given.key and counters.count > 0 and counters.expires_at > now()`,
      counters.flatMap((c) => [c.key, c.maxDelaySeconds]),
    );
  };
  return {
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
    /** Sets a counter that lasts at least `seconds` from now (a pause: a second one extends it, never shortens it). */
    async hold(key: string, seconds: number): Promise<void> {
      await db.raw(
        `insert into counters (key, count, expires_at) values (?, 1, now() + make_interval(secs => ?))
         on conflict (key) do update set
           count = case when counters.expires_at <= now() then 1 else counters.count + 1 end, updated_at = now(),
           expires_at = greatest(counters.expires_at, excluded.expires_at)`,
        [key, seconds],
      );
    },
    /**
     * One use at least `seconds` after the previous one, in one conditional write: true when it may be made
     * now (and it is counted), false when the last one was too recent. The spacing is the caller's at each
     * use, so a wait that grows (a prompt after prompts left unanswered) applies from the very next use.
     * The counter is kept `keepSeconds` (at least the longest spacing a caller uses).
     */
    async spaced(key: string, seconds: number, keepSeconds: number): Promise<boolean> {
      const res = await db.raw(
        `insert into counters (key, count, expires_at) values (?, 1, now() + make_interval(secs => ?))
         on conflict (key) do update set count = counters.count + 1, updated_at = now(), expires_at = excluded.expires_at
         where counters.expires_at <= now() or counters.updated_at + make_interval(secs => ?) <= now()
         returning count`,
        [key, Math.max(seconds, keepSeconds), seconds],
      );
      return res.rows.length === 1;
    },
    /**
     * Counts one attempt before it is made, in one conditional write: the counter (sliding expiry) goes up
     * only when the attempt may be made now, and the answer says whether it did. A counter past its expiry
     * starts again. `max`: refused from this many on. `free`/`maxDelaySeconds`: from `free` on, each attempt
     * waits 2^(count - free) s (at most `maxDelaySeconds`) after the one before. Parallel requests queue on
     * the row, so however many arrive at once, only as many as the rule allows are counted and let through.
     */
    async reserve(key: string, ttlSeconds: number, rule: ReserveRule): Promise<boolean> {
      const res = await db.raw(`${reserveSql('values (?, 1, now() + make_interval(secs => ?))')} returning count`, [key, ttlSeconds, ...reserveBindings(rule)]);
      return res.rows.length === 1;
    },
    /**
     * `reserve` of two counters in one statement, the second only when the first was counted (as two calls
     * in turn would): what each answered. Each stays one conditional write on its own row.
     */
    async reserveBoth(first: Reservation, second: Reservation): Promise<{ first: boolean; second: boolean }> {
      const res = await db.raw(
        `with first as (${reserveSql('values (?, 1, now() + make_interval(secs => ?))')} returning 1),
              second as (${reserveSql('select ?, 1, now() + make_interval(secs => ?) where exists (select 1 from first)')} returning 1)
         select (select count(*) from first)::int as first, (select count(*) from second)::int as second`,
        [first.key, first.ttlSeconds, ...reserveBindings(first.rule), second.key, second.ttlSeconds, ...reserveBindings(second.rule)],
      );
      const row = (res.rows as { first: number; second: number }[])[0];
      return { first: row?.first === 1, second: row?.second === 1 };
    },
    /**
     * Gives back an attempt `reserve` counted that turned out not to be a failure. The wait it started is
     * given back too: the attempt was allowed, so the next one is, as it would have been without it.
     */
    async release(key: string, maxDelaySeconds: number): Promise<void> {
      await releaseAll([{ key, maxDelaySeconds }]);
    },
    releaseAll,
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
      return deleteExpired(db, 'counters'); // in batches, each statement short
    },
  };
}

export type CountersRepository = ReturnType<typeof countersRepository>;
