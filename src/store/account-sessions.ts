/**
 * The account page's own sessions. A row is live only while it is unexpired AND the oidc-provider Session
 * it was redeemed from still exists for the same account: signing out at the provider (any logout, "sign
 * out other sessions", expiry) ends the account session with it, checked in the same query that reads it.
 */
import { deleted, type Db } from './db.ts';

export interface AccountSession {
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

export interface NewAccountSession {
  idHash: string;
  userId: string;
  oidcSessionUid: string;
  acr: string;
  amr: readonly string[];
  authTime: Date;
  ttlSeconds: number;
}

interface Row {
  id_hash: string; user_id: string; oidc_session_uid: string; acr: string; amr: string[]; auth_time: Date;
  created_at: Date; last_seen_at: Date; expires_at: Date;
}

const toSession = (r: Row): AccountSession => ({
  idHash: r.id_hash, userId: r.user_id, oidcSessionUid: r.oidc_session_uid, acr: r.acr, amr: r.amr,
  authTime: r.auth_time, createdAt: r.created_at, lastSeenAt: r.last_seen_at, expiresAt: r.expires_at,
});

/** How often last_seen_at is written for a session that keeps being used. */
const TOUCH_EVERY_SECONDS = 60;

/** The binding: the oidc-provider Session this account session came from is still live for the same user. */
const LIVE_OIDC_SESSION = `exists (select 1 from oidc_payloads p where p.kind = 'Session' and p.uid = a.oidc_session_uid
  and p.account_id = a.user_id and (p.expires_at is null or p.expires_at > now()))`;

export function accountSessionsRepository(db: Db) {
  return {
    async create(s: NewAccountSession): Promise<void> {
      await db('account_sessions').insert({
        id_hash: s.idHash, user_id: s.userId, oidc_session_uid: s.oidcSessionUid, acr: s.acr,
        amr: JSON.stringify(s.amr), auth_time: s.authTime,
        expires_at: db.raw(`now() + make_interval(secs => ?)`, [s.ttlSeconds]),
      });
    },

    /** The live session with this id hash, or undefined (expired, unknown, or its oidc session is gone). */
    async findLive(idHash: string): Promise<AccountSession | undefined> {
      const row = await db<Row>('account_sessions as a')
        .select('a.*')
        .where('a.id_hash', idHash)
        .andWhere('a.expires_at', '>', db.fn.now())
        .andWhereRaw(LIVE_OIDC_SESSION)
        .first();
      return row && toSession(row as Row);
    },

    /** A fresh proof in this session (a method just added by proving it): a new level and auth_time, now. */
    async raise(idHash: string, acr: string, amr: readonly string[]): Promise<void> {
      await db('account_sessions').where({ id_hash: idHash }).update({ acr, amr: JSON.stringify(amr), auth_time: db.fn.now() });
    },

    /** Records use, at most once a minute per session. */
    async touch(idHash: string): Promise<void> {
      await db('account_sessions')
        .where({ id_hash: idHash })
        .andWhere('last_seen_at', '<', db.raw(`now() - make_interval(secs => ?)`, [TOUCH_EVERY_SECONDS]))
        .update({ last_seen_at: db.fn.now() });
    },

    async delete(idHash: string): Promise<void> {
      await db('account_sessions').where({ id_hash: idHash }).delete();
    },

    /** Ends the account sessions bound to these oidc sessions (they were signed out). */
    async deleteForOidcSessions(userId: string, uids: readonly string[]): Promise<number> {
      if (uids.length === 0) return 0;
      return deleted(db('account_sessions').where({ user_id: userId }).whereIn('oidc_session_uid', [...uids]).delete());
    },

    async purge(): Promise<number> {
      return deleted(
        db('account_sessions as a')
          .where('a.expires_at', '<=', db.fn.now())
          .orWhereRaw(`not ${LIVE_OIDC_SESSION}`)
          .delete(),
      );
    },
  };
}

export type AccountSessionsRepository = ReturnType<typeof accountSessionsRepository>;
