/**
 * A user's sign-in sessions as the account page lists them: oidc-provider's live Session rows for the
 * account, with what oidc-provider does not keep (`session_activity`: where from, which browser, last seen).
 */
import { deleted, type Db } from './db.ts';

export interface SessionActivity {
  sessionUid: string;
  userId: string;
  ip: string | null;
  userAgent: string | null;
}

export interface UserSession {
  uid: string;
  /** When the user last proved who they are in this session. */
  authTime: Date | null;
  acr: string | null;
  expiresAt: Date | null;
  ip: string | null;
  userAgent: string | null;
  createdAt: Date | null;
  lastSeenAt: Date | null;
}

const TOUCH_EVERY_SECONDS = 60;

/**
 * `recordActivity`'s upsert with its four values at `$first`…`$first+3` (session uid, user id, ip, user
 * agent): for oidc-payloads.ts to store a session and its activity in one statement. A user deleted
 * meanwhile records nothing rather than failing the session's write.
 */
export const activityUpsertSql = (first: number) => `insert into session_activity (session_uid, user_id, ip, user_agent)
   select $${first}, u.id, $${first + 2}, $${first + 3} from users u where u.id = $${first + 1}
   on conflict (session_uid) do update set user_id = excluded.user_id, ip = excluded.ip,
     user_agent = excluded.user_agent, last_seen_at = now()`;

export const activityValues = (a: SessionActivity) => [a.sessionUid, a.userId, a.ip, a.userAgent?.slice(0, 512) ?? null];

export function sessionsRepository(db: Db) {
  return {
    /** Upserts where and from what a session was last used (each authorization, each account page sign-in). */
    async recordActivity(a: SessionActivity): Promise<void> {
      await db.raw(
        `insert into session_activity (session_uid, user_id, ip, user_agent) values (?, ?, ?, ?)
         on conflict (session_uid) do update set user_id = excluded.user_id, ip = excluded.ip,
           user_agent = excluded.user_agent, last_seen_at = now()`,
        activityValues(a),
      );
    },

    /** Marks a session as seen now (at most once a minute). */
    async touch(sessionUid: string): Promise<void> {
      await db('session_activity')
        .where({ session_uid: sessionUid })
        .andWhere('last_seen_at', '<', db.raw(`now() - make_interval(secs => ?)`, [TOUCH_EVERY_SECONDS]))
        .update({ last_seen_at: db.fn.now() });
    },

    /** The user's live sessions, most recently used first. */
    async listForUser(userId: string): Promise<UserSession[]> {
      const rows = await db('oidc_payloads as p')
        .leftJoin('session_activity as a', 'a.session_uid', 'p.uid')
        .where({ 'p.kind': 'Session', 'p.account_id': userId })
        .andWhere((w) => w.whereNull('p.expires_at').orWhere('p.expires_at', '>', db.fn.now()))
        .whereNotNull('p.uid')
        .select('p.uid', 'p.payload', 'p.expires_at', 'a.ip', 'a.user_agent', 'a.created_at', 'a.last_seen_at')
        .orderByRaw(`coalesce(a.last_seen_at, to_timestamp((p.payload->>'loginTs')::bigint)) desc nulls last`);
      return rows.map((r) => {
        const payload = r.payload as { loginTs?: unknown; acr?: unknown };
        return {
          uid: r.uid as string,
          authTime: typeof payload.loginTs === 'number' ? new Date(payload.loginTs * 1000) : null,
          acr: typeof payload.acr === 'string' ? payload.acr : null,
          expiresAt: r.expires_at as Date | null,
          ip: r.ip as string | null,
          userAgent: r.user_agent as string | null,
          createdAt: r.created_at as Date | null,
          lastSeenAt: r.last_seen_at as Date | null,
        };
      });
    },

    /** Activity rows whose session is gone (kept an hour: the row can be written just before its session is). */
    async purge(): Promise<number> {
      return deleted(
        db('session_activity as a')
          .where('a.last_seen_at', '<', db.raw(`now() - interval '1 hour'`))
          .whereNotExists(
            db('oidc_payloads as p')
              .select(db.raw('1'))
              .where('p.kind', 'Session')
              .andWhereRaw('p.uid = a.session_uid')
              .andWhere((w) => w.whereNull('p.expires_at').orWhere('p.expires_at', '>', db.fn.now())),
          )
          .delete(),
      );
    },
  };
}

export type SessionsRepository = ReturnType<typeof sessionsRepository>;
