/**
 * Storage for every oidc-provider model (sessions, interactions, codes, tokens, grants, …) in one table.
 * Expired rows are invisible at once and deleted by `purge`.
 */
import { deleted, type Db } from './db.ts';

export type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; accountId?: string; consumed?: number };

/** The oidc-provider models that carry an account's credentials (their payload has `accountId`). */
const ACCOUNT_TOKEN_KINDS = ['AccessToken', 'RefreshToken', 'AuthorizationCode', 'DeviceCode', 'BackchannelAuthenticationRequest'];

interface Row { kind: string; id: string; payload: Payload; grant_id: string | null; user_code: string | null;
  uid: string | null; account_id: string | null; expires_at: Date | null; consumed_at: Date | null }

/**
 * Live: not expired, and (for the kinds that carry a grant's credentials) not a token of a revoked grant.
 * The second test is added only for those kinds: every other lookup keeps the plain primary-key query.
 */
const live = (q: import('knex').Knex.QueryBuilder, db: Db, kind: string) => {
  q.andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()));
  if (!ACCOUNT_TOKEN_KINDS.includes(kind)) return q;
  return q.andWhere((w) => w.whereNull('oidc_payloads.grant_id').orWhereNotExists(
    db('revoked_grants').whereRaw('revoked_grants.grant_id = oidc_payloads.grant_id').andWhere('revoked_grants.expires_at', '>', db.fn.now())));
};

function withConsumed(row: Row | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
}

export function oidcPayloadsRepository(db: Db) {
  return {
    /** Stores a payload; false, and nothing stored, for a token of a revoked grant. */
    async upsert(kind: string, id: string, payload: Payload, expiresIn: number | undefined): Promise<boolean> {
      const grantId = payload.grantId ?? null;
      const values = [kind, id, JSON.stringify(payload), grantId, payload.userCode ?? null, payload.uid ?? null,
        typeof payload.accountId === 'string' ? payload.accountId : null, expiresIn ?? null, expiresIn ?? null];
      const upsert = `on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
           user_code = excluded.user_code, uid = excluded.uid, account_id = excluded.account_id, expires_at = excluded.expires_at
         returning id`;
      const expiry = 'case when ?::int is null then null else now() + make_interval(secs => ?::int) end';
      // Only a token of a grant can be of a revoked one: every other payload keeps the plain statement.
      const res = grantId !== null && ACCOUNT_TOKEN_KINDS.includes(kind)
        ? await db.raw(`insert into oidc_payloads (kind, id, payload, grant_id, user_code, uid, account_id, expires_at)
           select ?, ?, ?::jsonb, ?, ?, ?, ?, ${expiry}
           where not exists (select 1 from revoked_grants where grant_id = ? and expires_at > now()) ${upsert}`, [...values, grantId])
        : await db.raw(`insert into oidc_payloads (kind, id, payload, grant_id, user_code, uid, account_id, expires_at)
           values (?, ?, ?::jsonb, ?, ?, ?, ?, ${expiry}) ${upsert}`, values);
      return res.rows.length === 1;
    },
    async find(kind: string, id: string): Promise<Payload | undefined> {
      return withConsumed(await live(db<Row>('oidc_payloads').where({ kind, id }), db, kind).first());
    },
    async findByUserCode(kind: string, userCode: string): Promise<Payload | undefined> {
      return withConsumed(await live(db<Row>('oidc_payloads').where({ kind, user_code: userCode }), db, kind).first());
    },
    async findByUid(kind: string, uid: string): Promise<Payload | undefined> {
      return withConsumed(await live(db<Row>('oidc_payloads').where({ kind, uid }), db, kind).first());
    },
    /** Every live payload of a kind that belongs to an account (a user's grants, sessions), oldest first. */
    async byAccount(kind: string, accountId: string): Promise<{ id: string; payload: Payload; expiresAt: Date | null }[]> {
      const rows = (await live(db('oidc_payloads').where({ kind, account_id: accountId }), db, kind).orderBy('id')) as Row[];
      return rows.map((r) => ({ id: r.id, payload: r.payload, expiresAt: r.expires_at }));
    },
    /** Marks the payload consumed in one conditional write; true only for the one caller that did. */
    async consume(kind: string, id: string): Promise<boolean> {
      const rows = await db('oidc_payloads').where({ kind, id }).whereNull('consumed_at').update({ consumed_at: db.fn.now() }).returning('id');
      return rows.length === 1;
    },
    async destroy(kind: string, id: string): Promise<void> {
      await db('oidc_payloads').where({ kind, id }).delete();
    },
    async revokeByGrantId(kind: string, grantId: string): Promise<void> {
      await db('oidc_payloads').where({ kind, grant_id: grantId }).delete();
    },
    /**
     * Revokes a grant for good: marks it (for `markSeconds`, as long as any of its tokens could live), then
     * deletes it and every token and code issued under it. A token of it that a parallel request stores
     * afterwards is refused by upsert, and one stored in between is never found, whatever order requests
     * on several instances take.
     */
    async revokeGrant(grantId: string, markSeconds: number): Promise<void> {
      await db.raw(
        `insert into revoked_grants (grant_id, expires_at) values (?, now() + make_interval(secs => ?::int))
         on conflict (grant_id) do update set expires_at = greatest(revoked_grants.expires_at, excluded.expires_at)`,
        [grantId, markSeconds],
      );
      await db('oidc_payloads').where((w) => w.where({ kind: 'Grant', id: grantId }).orWhere((o) => o.whereIn('kind', ACCOUNT_TOKEN_KINDS).andWhere('grant_id', grantId))).delete();
    },
    /** The grant a payload was issued under, expired or not (its row is still there). */
    async grantOf(kind: string, id: string): Promise<string | undefined> {
      const row = await db('oidc_payloads').where({ kind, id }).first('grant_id');
      return (row?.grant_id as string | null | undefined) ?? undefined;
    },
    /** Ends every session of an account (a password reset); returns the ended sessions' payloads. */
    async destroyAccountSessions(accountId: string): Promise<Payload[]> {
      const rows = await db<Row>('oidc_payloads').where({ kind: 'Session', account_id: accountId }).select('payload');
      await db('oidc_payloads').where({ kind: 'Session', account_id: accountId }).delete();
      return rows.map((r) => r.payload);
    },
    /**
     * Revokes every grant of an account for good, like `revokeGrant` for each: marks them all, then deletes
     * the grants and every token and pending code issued to the account. A refresh that another instance is
     * answering at this moment stores nothing, or a token never found. Remembered consent (the consents
     * table) stays, so the apps do not ask again after a password reset.
     */
    async revokeAccountTokens(accountId: string, markSeconds: number): Promise<number> {
      await db.raw(
        `insert into revoked_grants (grant_id, expires_at)
         select distinct g, now() + make_interval(secs => ?::int) from (
           select case when kind = 'Grant' then id else grant_id end as g from oidc_payloads
            where account_id = ? and (kind = 'Grant' or kind in (${ACCOUNT_TOKEN_KINDS.map(() => '?').join(', ')}))) grants
          where g is not null
         on conflict (grant_id) do update set expires_at = greatest(revoked_grants.expires_at, excluded.expires_at)`,
        [markSeconds, accountId, ...ACCOUNT_TOKEN_KINDS],
      );
      await db('oidc_payloads').where({ account_id: accountId, kind: 'Grant' }).delete();
      return deleted(db('oidc_payloads').where({ account_id: accountId }).whereIn('kind', ACCOUNT_TOKEN_KINDS).delete());
    },
    async purge(): Promise<number> {
      await db('revoked_grants').where('expires_at', '<=', db.fn.now()).delete();
      return deleted(db('oidc_payloads').where('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type OidcPayloadsRepository = ReturnType<typeof oidcPayloadsRepository>;
