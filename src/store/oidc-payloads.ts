/**
 * Storage for every oidc-provider model (sessions, interactions, codes, tokens, grants, …) in one table.
 * Expired rows are invisible at once and deleted by `purge`. The statements oidc-provider makes on every
 * token request (find, upsert, consume, destroy, revoke by grant) are prepared statements (db.ts `prepared`);
 * the rest go through knex.
 */
import { deleted, deleteExpired, prepared, type Db } from './db.ts';
import { toUser, USER_COLUMNS, type Row as UserRow, type User } from './users.ts';
import { activityUpsertSql, activityValues, type SessionActivity } from './sessions.ts';
import { PROGRESS_COLUMNS, toProgress, type Progress, type Row as ProgressRow } from './sign-in-progress.ts';
import { CONSENT_COLUMNS, toConsent, type Consent, type Row as ConsentRow } from './consents.ts';

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

/** The same two tests in SQL, for the prepared statements below (`p` is the row looked up). */
const NOT_EXPIRED = '(p.expires_at is null or p.expires_at > now())';
const NOT_REVOKED = `(p.grant_id is null or not exists (select 1 from revoked_grants r where r.grant_id = p.grant_id and r.expires_at > now()))`;
const LIVE_SQL = { plain: NOT_EXPIRED, token: `${NOT_EXPIRED} and ${NOT_REVOKED}` };
const liveness = (kind: string): keyof typeof LIVE_SQL => (ACCOUNT_TOKEN_KINDS.includes(kind) ? 'token' : 'plain');

/** A lookup by one column, per liveness: `kind = $1 and <column> = $2`; the first match, like knex's `first()`. */
const lookupSql = (column: 'id' | 'user_code' | 'uid', which: keyof typeof LIVE_SQL) =>
  `select p.payload, p.consumed_at from oidc_payloads p where p.kind = $1 and p.${column} = $2 and ${LIVE_SQL[which]} limit 1`;

const EXPIRY_SQL = 'case when $8::int is null then null else now() + make_interval(secs => $9::int) end';
const UPSERT_CONFLICT_SQL = `on conflict (kind, id) do update set payload = excluded.payload, grant_id = excluded.grant_id,
     user_code = excluded.user_code, uid = excluded.uid, account_id = excluded.account_id, expires_at = excluded.expires_at
   returning id`;
const UPSERT_SQL = `insert into oidc_payloads (kind, id, payload, grant_id, user_code, uid, account_id, expires_at)
   values ($1, $2, $3::jsonb, $4, $5, $6, $7, ${EXPIRY_SQL}) ${UPSERT_CONFLICT_SQL}`;
/**
 * A payload stored again only while its row is there and live: an interaction given its result at the end of a
 * request that loaded it at the start must not come back after oidc-provider resumed and deleted it meanwhile.
 */
const UPDATE_LIVE_SQL = `update oidc_payloads set payload = $3::jsonb, grant_id = $4, user_code = $5, uid = $6, account_id = $7,
     expires_at = ${EXPIRY_SQL}
   where kind = $1 and id = $2 and (expires_at is null or expires_at > now()) returning id`;
/** Only a token of a grant can be of a revoked one: every other payload keeps the plain statement. */
const UPSERT_UNLESS_REVOKED_SQL = `insert into oidc_payloads (kind, id, payload, grant_id, user_code, uid, account_id, expires_at)
   select $1, $2, $3::jsonb, $4, $5, $6, $7, ${EXPIRY_SQL}
   where not exists (select 1 from revoked_grants where grant_id = $10 and expires_at > now()) ${UPSERT_CONFLICT_SQL}`;

/**
 * A token looked up as any of several kinds at once (oidc-provider tries an access token as both
 * AccessToken and ClientCredentials), each live row with the live grant it was issued under, the live
 * session it expires with (`expiresWithSession`: what `Session.findByUid` of its `sessionUid` answers),
 * and the account it was issued to, if any (the user's columns follow the token's, the grant's and the session's).
 */
const TOKEN_WITH_GRANT_SQL = `select p.kind as token_kind, p.payload as token_payload, p.consumed_at as token_consumed_at,
        g.payload as grant_payload, g.consumed_at as grant_consumed_at,
        s.payload as session_payload, s.consumed_at as session_consumed_at, ${USER_COLUMNS.map((c) => `u.${c}`).join(', ')}
   from oidc_payloads p
   left join oidc_payloads g on g.kind = 'Grant' and g.id = p.grant_id and (g.expires_at is null or g.expires_at > now())
   left join lateral (select x.payload, x.consumed_at from oidc_payloads x
     where p.payload->>'expiresWithSession' = 'true' and x.kind = 'Session' and x.uid = p.payload->>'sessionUid'
       and (x.expires_at is null or x.expires_at > now()) limit 1) s on true
   left join users u on u.id = p.account_id
  where p.kind = any($1::text[]) and p.id = $2 and ${NOT_EXPIRED}
    and (p.kind <> all($3::text[]) or ${NOT_REVOKED})`;

/**
 * An interaction with its live sign-in in progress (sign_in_progress, keyed by the interaction's uid, which
 * is its id), the account its result signed in (`result.login.accountId`) or else the one its sign-in in
 * progress is of, and that account's remembered consent for the interaction's app: what a sign-in's page
 * reads next (the progress and its user), and what oidc-provider's resume reads next (findAccount, then
 * loadExistingGrant). The progress's columns are prefixed `sp_`, the consent's `c_`.
 */
const INTERACTION_WITH_ACCOUNT_SQL = `select p.payload, p.consumed_at, ${USER_COLUMNS.map((c) => `u.${c}`).join(', ')},
        ${PROGRESS_COLUMNS.map((c) => `sp.${c} as sp_${c}`).join(', ')}, ${CONSENT_COLUMNS.map((c) => `c.${c} as c_${c}`).join(', ')}
   from oidc_payloads p
   left join sign_in_progress sp on sp.interaction_uid = p.id and sp.expires_at > now()
   left join users u on u.id = coalesce(p.payload->'result'->'login'->>'accountId', sp.user_id)
   left join consents c on c.user_id = u.id and c.client_id = p.payload->'params'->>'client_id'
  where p.kind = 'Interaction' and p.id = $1 and ${NOT_EXPIRED}`;

/** What `upsert` may write in the same statement: a session's activity, a grant. */
export interface Along {
  activity?: SessionActivity;
  grant?: { id: string; payload: Payload; expiresIn: number | undefined };
}

/** `sql` with its parameters $1, $2, … renumbered from $(1 + by). */
const shiftParameters = (sql: string, by: number) => sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + by}`);

/** UPSERT_SQL's nine values. */
const upsertValues = (kind: string, id: string, payload: Payload, expiresIn: number | undefined) => [kind, id, JSON.stringify(payload),
  payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, typeof payload.accountId === 'string' ? payload.accountId : null,
  expiresIn ?? null, expiresIn ?? null];

function withConsumed(row: Pick<Row, 'payload' | 'consumed_at'> | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at ? { ...row.payload, consumed: Math.floor(row.consumed_at.getTime() / 1000) } : row.payload;
}

/**
 * A token found by `findTokens`, with the grant it names (undefined when it names none, or none is live)
 * and the user it was issued to (undefined when none, or there is no such user).
 */
/** An interaction found by `findInteraction`: the account its result names and that account's consent for its app. */
export interface FoundInteraction {
  payload: Payload;
  /** Its live sign-in in progress, if any. */
  progress: Progress | undefined;
  /** The account its result names, else its sign-in in progress's; the user read (undefined when none). */
  accountId: string | undefined;
  account: User | undefined;
  clientId: string | undefined;
  consent: Consent | undefined;
}

export interface FoundToken { kind: string; payload: Payload; grant: Payload | undefined; session: Payload | undefined; account: User | undefined }

interface TokenRow extends Partial<UserRow> {
  token_kind: string; token_payload: Payload; token_consumed_at: Date | null; grant_payload: Payload | null; grant_consumed_at: Date | null;
  session_payload: Payload | null; session_consumed_at: Date | null;
}

export function oidcPayloadsRepository(db: Db) {
  const findBy = async (column: 'id' | 'user_code' | 'uid', kind: string, value: string): Promise<Payload | undefined> => {
    const which = liveness(kind);
    const [row] = await prepared<Pick<Row, 'payload' | 'consumed_at'>>(db, `oidc_find_by_${column}_${which}`, lookupSql(column, which), [kind, value]);
    return withConsumed(row);
  };
  return {
    /** Stores a payload; false, and nothing stored, for a token of a revoked grant. */
    /**
     * Stores a payload; false, and nothing stored, for a token of a revoked grant. `along`: written in the
     * same statement, a session's activity (the sessions repository's `recordActivity`) and a grant stored
     * as `upsert` stores one (each its own row: a grant is never the token of a grant).
     */
    async upsert(kind: string, id: string, payload: Payload, expiresIn: number | undefined, along: Along = {}): Promise<boolean> {
      const grantId = payload.grantId ?? null;
      const values = upsertValues(kind, id, payload, expiresIn);
      const [name, text, all]: [string, string, unknown[]] = grantId !== null && ACCOUNT_TOKEN_KINDS.includes(kind)
        ? ['oidc_upsert_unless_revoked', UPSERT_UNLESS_REVOKED_SQL, [...values, grantId]]
        : ['oidc_upsert', UPSERT_SQL, values];
      const ctes: string[] = [];
      if (along.activity) {
        ctes.push(`activity as (${activityUpsertSql(all.length + 1)})`);
        all.push(...activityValues(along.activity));
      }
      if (along.grant) {
        ctes.push(`grant_along as (${shiftParameters(UPSERT_SQL, all.length)})`);
        all.push(...upsertValues('Grant', along.grant.id, along.grant.payload, along.grant.expiresIn));
      }
      const rows = await prepared(db, `${name}${along.activity ? '_activity' : ''}${along.grant ? '_grant' : ''}`,
        ctes.length ? `with ${ctes.join(', ')} ${text}` : text, all);
      return rows.length === 1;
    },
    /** Stores a payload again only while its row is there and live (`UPDATE_LIVE_SQL`); false, and nothing stored, otherwise. */
    async updateLive(kind: string, id: string, payload: Payload, expiresIn: number | undefined): Promise<boolean> {
      return (await prepared(db, 'oidc_update_live', UPDATE_LIVE_SQL, upsertValues(kind, id, payload, expiresIn))).length === 1;
    },
    async find(kind: string, id: string): Promise<Payload | undefined> {
      return findBy('id', kind, id);
    },
    /**
     * `id` as each of `kinds` (AccessToken, ClientCredentials, RefreshToken, AuthorizationCode) in one statement,
     * each live token with its live grant, its session and its user: what `find` answers for the token and then
     * for `Grant` and its grant id, `findByUid` for `Session` and its session uid (when it expires with its
     * session), and what the users repository's `findById` answers for its account id.
     */
    async findTokens(kinds: readonly string[], id: string): Promise<FoundToken[]> {
      const rows = await prepared<TokenRow>(db, 'oidc_find_tokens', TOKEN_WITH_GRANT_SQL, [kinds, id, ACCOUNT_TOKEN_KINDS]);
      return rows.map(({ token_kind, token_payload, token_consumed_at, grant_payload, grant_consumed_at, session_payload, session_consumed_at, ...user }) => ({
        kind: token_kind,
        payload: withConsumed({ payload: token_payload, consumed_at: token_consumed_at })!,
        grant: grant_payload ? withConsumed({ payload: grant_payload, consumed_at: grant_consumed_at }) : undefined,
        session: session_payload ? withConsumed({ payload: session_payload, consumed_at: session_consumed_at }) : undefined,
        account: user.id ? toUser(user as UserRow) : undefined,
      }));
    },
    /** `find` of an Interaction, with its sign-in in progress, its account and that account's consent for its app (see INTERACTION_WITH_ACCOUNT_SQL). */
    async findInteraction(id: string): Promise<FoundInteraction | undefined> {
      const [row] = await prepared<Pick<Row, 'payload' | 'consumed_at'> & Partial<UserRow> & Record<string, unknown>>(
        db, 'oidc_find_interaction', INTERACTION_WITH_ACCOUNT_SQL, [id]);
      if (!row) return undefined;
      const payload = withConsumed(row)!;
      const login = (payload.result as { login?: { accountId?: unknown } } | undefined)?.login;
      const params = payload.params as { client_id?: unknown } | undefined;
      const consent = Object.fromEntries(CONSENT_COLUMNS.map((c) => [c, row[`c_${c}`]])) as unknown as ConsentRow;
      const progress = Object.fromEntries(PROGRESS_COLUMNS.map((c) => [c, row[`sp_${c}`]])) as unknown as ProgressRow;
      return {
        payload,
        progress: progress.interaction_uid ? toProgress(progress) : undefined,
        accountId: typeof login?.accountId === 'string' ? login.accountId : progress.interaction_uid ? progress.user_id : undefined,
        account: row.id ? toUser(row as UserRow) : undefined,
        clientId: typeof params?.client_id === 'string' ? params.client_id : undefined,
        consent: consent.user_id ? toConsent(consent) : undefined,
      };
    },
    async findByUserCode(kind: string, userCode: string): Promise<Payload | undefined> {
      return findBy('user_code', kind, userCode);
    },
    async findByUid(kind: string, uid: string): Promise<Payload | undefined> {
      return findBy('uid', kind, uid);
    },
    /** Every live payload of a kind that belongs to an account (a user's grants, sessions), oldest first. */
    async byAccount(kind: string, accountId: string): Promise<{ id: string; payload: Payload; expiresAt: Date | null }[]> {
      const rows = (await live(db('oidc_payloads').where({ kind, account_id: accountId }), db, kind).orderBy('id')) as Row[];
      return rows.map((r) => ({ id: r.id, payload: r.payload, expiresAt: r.expires_at }));
    },
    /** Marks the payload consumed in one conditional write; true only for the one caller that did. */
    async consume(kind: string, id: string): Promise<boolean> {
      const rows = await prepared(db, 'oidc_consume',
        'update oidc_payloads set consumed_at = now() where kind = $1 and id = $2 and consumed_at is null returning id', [kind, id]);
      return rows.length === 1;
    },
    async destroy(kind: string, id: string): Promise<void> {
      await prepared(db, 'oidc_destroy', 'delete from oidc_payloads where kind = $1 and id = $2', [kind, id]);
    },
    async revokeByGrantId(kind: string, grantId: string): Promise<void> {
      await prepared(db, 'oidc_revoke_by_grant', 'delete from oidc_payloads where kind = $1 and grant_id = $2', [kind, grantId]);
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
      // In batches: a backlog (tokens of a busy day) must not become one statement past the statement timeout.
      await deleteExpired(db, 'revoked_grants');
      return deleteExpired(db, 'oidc_payloads');
    },
  };
}

export type OidcPayloadsRepository = ReturnType<typeof oidcPayloadsRepository>;
