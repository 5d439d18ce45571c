/** Each user's security activity feed, and the trail of sign-ins. It outlives the user: `user_id` has no foreign key (migration 010). */
import type { Db } from './db.ts';

export interface SecurityEvent {
  userId: string | null;
  type: string;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

export function securityEventsRepository(db: Db) {
  return {
    async insert(e: SecurityEvent): Promise<void> {
      await db('security_events').insert({
        user_id: e.userId, type: e.type, ip: e.ip, user_agent: e.userAgent?.slice(0, 512) ?? null,
        details: JSON.stringify(e.details),
      });
    },
    /**
     * How many events of these types the user had in the last `hours`, after their latest successful
     * sign-in (the risk rule "recent failed attempts").
     */
    async countSinceLastSuccess(userId: string, types: readonly string[], hours: number): Promise<number> {
      const row = await db('security_events')
        .where({ user_id: userId })
        .whereIn('type', [...types])
        .andWhere('created_at', '>', db.raw(`now() - make_interval(hours => ?)`, [hours]))
        .andWhere('created_at', '>', db.raw(
          `coalesce((select max(s.created_at) from security_events s where s.user_id = ? and s.type = 'sign_in.succeeded'), '-infinity'::timestamptz)`,
          [userId],
        ))
        .count<{ n: number }>('id as n')
        .first();
      return Number(row?.n ?? 0);
    },
    /** The user's events, newest first; only those of the last `sinceDays` days when given. */
    async forUser(userId: string, limit = 100, sinceDays?: number): Promise<(SecurityEvent & { createdAt: Date })[]> {
      const query = db('security_events').where({ user_id: userId });
      if (sinceDays !== undefined) query.andWhere('created_at', '>', db.raw(`now() - make_interval(days => ?)`, [sinceDays]));
      const rows = await query.orderBy('id', 'desc').limit(limit);
      return rows.map((r) => ({ userId: r.user_id, type: r.type, ip: r.ip, userAgent: r.user_agent, details: r.details, createdAt: r.created_at }));
    },
  };
}

export type SecurityEventsRepository = ReturnType<typeof securityEventsRepository>;
