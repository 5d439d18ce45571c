/**
 * The admin console's own sessions. Like the account page's (account-sessions.ts), a row is live only while
 * the oidc-provider Session it was redeemed from still exists for the same account; besides, it dies after
 * `idleSeconds` without a request and `absoluteSeconds` after its sign-in, and as soon as its user is
 * disabled or holds no console role any more. `use` checks all of that and records the request in one
 * conditional UPDATE … RETURNING: two requests never see a session one of them has just let expire.
 */
import { deleted, type Db } from './db.ts';

export interface ConsoleSession {
  idHash: string;
  userId: string;
  oidcSessionUid: string;
  acr: string;
  amr: string[];
  authTime: Date;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}

export interface NewConsoleSession {
  idHash: string;
  userId: string;
  oidcSessionUid: string;
  acr: string;
  amr: readonly string[];
  authTime: Date;
  /** The absolute limit, from now. */
  absoluteSeconds: number;
}

export interface ConsoleLimits {
  idleSeconds: number;
  absoluteSeconds: number;
}

interface Row {
  id_hash: string; user_id: string; oidc_session_uid: string; acr: string; amr: string[]; auth_time: Date;
  created_at: Date; last_seen_at: Date; expires_at: Date;
}

const toSession = (r: Row): ConsoleSession => ({
  idHash: r.id_hash, userId: r.user_id, oidcSessionUid: r.oidc_session_uid, acr: r.acr, amr: r.amr,
  authTime: r.auth_time, createdAt: r.created_at, lastSeenAt: r.last_seen_at, expiresAt: r.expires_at,
});

/** The oidc-provider Session this console session came from is still live for the same user. */
const LIVE_OIDC_SESSION = `exists (select 1 from oidc_payloads p where p.kind = 'Session' and p.uid = c.oidc_session_uid
  and p.account_id = c.user_id and (p.expires_at is null or p.expires_at > now()))`;
/** Its user is active and holds a console role. */
const ACTIVE_ROLE_HOLDER = `exists (select 1 from users u where u.id = c.user_id and u.status = 'active' and u.roles <> '[]'::jsonb)`;

export function consoleSessionsRepository(db: Db) {
  return {
    async create(s: NewConsoleSession): Promise<void> {
      await db('console_sessions').insert({
        id_hash: s.idHash, user_id: s.userId, oidc_session_uid: s.oidcSessionUid, acr: s.acr,
        amr: JSON.stringify(s.amr), auth_time: s.authTime,
        expires_at: db.raw(`now() + make_interval(secs => ?)`, [s.absoluteSeconds]),
      });
    },

    /**
     * The live session with this id hash, its last request moved to now; undefined when it is unknown, idle
     * or old beyond `limits`, its provider session is gone, or its user is disabled or lost every role.
     */
    async use(idHash: string, limits: ConsoleLimits): Promise<ConsoleSession | undefined> {
      const { rows } = await db.raw<{ rows: Row[] }>(
        `update console_sessions as c set last_seen_at = now()
         where c.id_hash = ? and c.expires_at > now()
           and c.created_at > now() - make_interval(secs => ?)
           and c.last_seen_at > now() - make_interval(secs => ?)
           and ${LIVE_OIDC_SESSION} and ${ACTIVE_ROLE_HOLDER}
         returning c.*`,
        [idHash, limits.absoluteSeconds, limits.idleSeconds],
      );
      return rows[0] && toSession(rows[0]);
    },

    async delete(idHash: string): Promise<ConsoleSession | undefined> {
      const { rows } = await db.raw<{ rows: Row[] }>(`delete from console_sessions where id_hash = ? returning *`, [idHash]);
      return rows[0] && toSession(rows[0]);
    },

    async purge(): Promise<number> {
      return deleted(
        db('console_sessions as c')
          .where('c.expires_at', '<=', db.fn.now())
          .orWhereRaw(`not ${LIVE_OIDC_SESSION}`)
          .delete(),
      );
    },
  };
}

export type ConsoleSessionsRepository = ReturnType<typeof consoleSessionsRepository>;
