/**
 * One oidc-provider adapter for every model, on the database. The Client model reads the `clients`
 * table (registered by the CLI or admin API) and is read-only from oidc-provider's side.
 *
 * Within one request a token lookup is one statement: oidc-provider looks an access token up as an
 * AccessToken and as a ClientCredentials token at the same moment (introspection), and then loads the
 * grant it names and the account (refresh, userinfo, a code's exchange). Lookups of one id made in the same
 * tick go out as one statement that also reads the token's grant, session (when it expires with it) and
 * user, and the request's next `Grant` lookup of that grant, `Session.findByUid` of that session and
 * `findAccount` of that user (provider.ts) take them instead of reading them again (see `requestLookups`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { Store } from '../store/index.ts';
import type { Along, FoundToken, Payload } from '../store/oidc-payloads.ts';
import type { User } from '../store/users.ts';
import type { Consent } from '../store/consents.ts';
import type { SessionActivity } from '../store/sessions.ts';
import type { Progress } from '../store/sign-in-progress.ts';

/** How long a revoked grant stays marked: the longest life of any token or code issued under it. */
export const revokedGrantSeconds = (config: Pick<Config, 'ttl'>): number => Math.max(...Object.values(config.ttl));

/** How long an expired CIBA request stays findable, to be answered expired_token. */
const EXPIRED_CIBA_KEPT_SECONDS = 600;

/** The kinds oidc-provider looks a presented token up as: `findToken` batches these. */
const TOKEN_KINDS = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken', 'AuthorizationCode']);

/**
 * What one request's lookups share. `pending`: the token lookups of this tick, per id, not yet sent (the
 * kinds asked for and the one answer they will share); once sent, a later lookup makes a new statement.
 * `grants`: the grant each found token named, as that statement read it, for the request's next `Grant`
 * lookup of it (taken once; forgotten when the grant is written or revoked in the request). `accounts`: the
 * same for the user each token was issued to, for the request's next `findAccount` (taken once).
 */
interface RequestLookups {
  pending: Map<string, { kinds: Set<string>; found: Promise<FoundToken[]> }>;
  grants: Map<string, Payload | undefined>;
  /** The session each found token expires with, by its uid, for the request's next `Session.findByUid` of it (taken once). */
  sessions: Map<string, Payload | undefined>;
  accounts: Map<string, User | undefined>;
  /** The consent of a user for an app (`consentKey`) read with an interaction, for the request's next look at it (taken once). */
  consents: Map<string, Consent | undefined>;
  /** The sign-in in progress of an interaction (by its uid) read with it, for the request's next look at it (taken once). */
  progress: Map<string, Progress | undefined>;
  /**
   * A grant oidc-provider's request saved, not yet stored: it goes in the same statement as the request's
   * next write (the authorization code, the session), before its next read or other change, or when the
   * request ends, whichever comes first.
   */
  grant?: { id: string; payload: Payload; expiresIn: number | undefined };
  /** Where and from what the request's session was just used, to be stored with the session (see `deferSessionActivity`). */
  activity?: SessionActivity;
  /** Set while `saveIfStillThere` runs: an interaction is stored again only if its row is still there. */
  existingOnly?: boolean;
}

const consentKey = (userId: string, clientId: string) => `${userId}\n${clientId}`;

const perRequest = new WeakMap<object, RequestLookups>();

const newLookups = (): RequestLookups =>
  ({ pending: new Map(), grants: new Map(), sessions: new Map(), accounts: new Map(), consents: new Map(), progress: new Map() });

/** The lookups of one of our own requests that oidc-provider does not answer (a sign-in's pages: `withRequestLookups`). */
const ownRequest = new AsyncLocalStorage<RequestLookups>();

/**
 * Runs `fn` (the rest of one of our own requests, such as a sign-in's page) with lookups of its own, as
 * oidc-provider's requests have: the interaction it loads comes with its sign-in in progress and its user.
 */
export function withRequestLookups<T>(fn: () => Promise<T>): Promise<T> {
  return ownRequest.run(newLookups(), fn);
}

/**
 * Runs `save` (an interaction's `save()` in one of our own requests) so that the interaction is stored only
 * while its row is still there: oidc-provider may have resumed it meanwhile (a parallel request of the same
 * browser), and a consumed interaction written back could be resumed a second time. Throws the
 * "sign-in expired" error when it was gone.
 */
export async function saveIfStillThere<T>(save: () => Promise<T>): Promise<T> {
  const lookups = ownRequest.getStore();
  if (!lookups) return save();
  lookups.existingOnly = true;
  try {
    return await save();
  } finally {
    lookups.existingOnly = false;
  }
}

/**
 * The sign-in in progress of interaction `uid` as this request's lookup of the interaction read it, taken
 * once: what the sign-in progress repository's `find` would answer now. Undefined when none was read.
 */
export function takeProgressRead(uid: string): { progress: Progress | undefined } | undefined {
  const taken = take(requestLookups()?.progress, uid);
  return taken && { progress: taken.value };
}

/** The entry for `key`, removed; undefined when there is none (an entry may hold undefined: read, not found). */
function take<T>(entries: Map<string, T> | undefined, key: string): { value: T } | undefined {
  if (!entries?.has(key)) return undefined;
  const value = entries.get(key) as T;
  entries.delete(key);
  return { value };
}

/**
 * The user `accountId` as this request's token lookup read it along with the token, taken once: what the
 * users repository's `findById` would answer now, without a statement. Undefined when none was read.
 */
export function takeAccountRead(accountId: string): { user: User | undefined } | undefined {
  const taken = take(requestLookups()?.accounts, accountId);
  return taken && { user: taken.value };
}

/**
 * The remembered consent of `userId` for `clientId` as this request's interaction lookup read it, taken
 * once: what the consents repository's `find` would answer now, without a statement. Undefined when none was read.
 */
export function takeConsentRead(userId: string, clientId: string): { consent: Consent | undefined } | undefined {
  const taken = take(requestLookups()?.consents, consentKey(userId, clientId));
  return taken && { consent: taken.value };
}

/**
 * Keeps the session activity of oidc-provider's request `ctx` to be stored in one statement with the
 * request's next write of that session (oidc-provider saves the session at the end of the request).
 * `takeSessionActivity` answers what no write took; false outside a request of oidc-provider's.
 */
export function deferSessionActivity(ctx: object, activity: SessionActivity): boolean {
  const lookups = perRequest.get(ctx) ?? (ctx === Provider.ctx ? requestLookups() : undefined);
  if (!lookups) return false;
  lookups.activity = activity;
  return true;
}

/** The session activity `deferSessionActivity` kept that no session write took, taken once. */
export function takeSessionActivity(ctx: object): SessionActivity | undefined {
  const lookups = perRequest.get(ctx);
  const activity = lookups?.activity;
  if (lookups) lookups.activity = undefined;
  return activity;
}

/** The lookups of the request being answered (oidc-provider's request context), or undefined outside one. */
function requestLookups(): RequestLookups | undefined {
  const ctx = Provider.ctx;
  if (!ctx) return ownRequest.getStore();
  let lookups = perRequest.get(ctx);
  if (!lookups) perRequest.set(ctx, (lookups = newLookups()));
  return lookups;
}

/**
 * `revokedGrantSeconds`: how long a revoked grant stays marked, at least the longest life of a token.
 */
export function createAdapterClass(store: Store, revokedGrantSeconds: number) {
  /**
   * The token `id` as `kind`. Every kind asked for `id` in this tick of the request goes out in one
   * statement, sent once the tick's lookups are made; the grants it read are kept for the request.
   */
  const findToken = async (lookups: RequestLookups, kind: string, id: string): Promise<Payload | undefined> => {
    let batch = lookups.pending.get(id);
    if (!batch) {
      const kinds = new Set<string>();
      const found = new Promise<void>((resolve) => queueMicrotask(resolve)).then(async () => {
        lookups.pending.delete(id);
        const tokens = await store.oidc.findTokens([...kinds], id);
        for (const t of tokens) {
          if (typeof t.payload.grantId === 'string') lookups.grants.set(t.payload.grantId, t.grant);
          if (t.payload.expiresWithSession === true && typeof t.payload.sessionUid === 'string') lookups.sessions.set(t.payload.sessionUid, t.session);
          if (typeof t.payload.accountId === 'string') lookups.accounts.set(t.payload.accountId, t.account);
        }
        return tokens;
      });
      lookups.pending.set(id, (batch = { kinds, found }));
    }
    batch.kinds.add(kind);
    return (await batch.found).find((t) => t.kind === kind)?.payload;
  };

  const forgetGrant = (id: string) => requestLookups()?.grants.delete(id);

  /** Stores the grant this request saved and no write has carried yet (see `RequestLookups.grant`). */
  const flushGrant = async (lookups: RequestLookups | undefined): Promise<void> => {
    const grant = lookups?.grant;
    if (!grant) return;
    lookups.grant = undefined;
    await store.oidc.upsert('Grant', grant.id, grant.payload, grant.expiresIn);
  };

  return class DatabaseAdapter implements Adapter {
    constructor(readonly name: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are registered through Latchkey, not oidc-provider');
      // A token of a grant revoked meanwhile (a code redeemed twice in parallel): the request that would
      // have answered it gets invalid_grant instead.
      // A CIBA request is kept a while past its time (oidc-provider checks its `exp` itself), so that a late
      // poll is answered expired_token, as CIBA §11 says, rather than invalid_grant.
      const kept = this.name === 'BackchannelAuthenticationRequest' && expiresIn ? expiresIn + EXPIRED_CIBA_KEPT_SECONDS : expiresIn;
      if (this.name === 'Grant') forgetGrant(id);
      const lookups = requestLookups();
      const ctx = Provider.ctx;
      if (this.name === 'Grant' && lookups && ctx) {
        // Stored with the request's next write (the code, the session), or before its next read.
        await flushGrant(lookups);
        lookups.grant = { id, payload: payload as Payload, expiresIn: kept };
        // Nothing carried it (no write followed): stored on its own; a failure is logged as a server error.
        ctx.res.once('close', () => void flushGrant(lookups).catch((err: unknown) => ctx.oidc.provider.emit('server_error', ctx, err)));
        return;
      }
      if (this.name === 'Interaction' && lookups?.existingOnly) {
        await flushGrant(lookups);
        if (!(await store.oidc.updateLive(this.name, id, payload as Payload, kept))) {
          throw new AppError('interaction.expired', 400, 'This sign-in has expired or was started in another browser. Go back to the app and sign in again.');
        }
        return;
      }
      const along: Along = {};
      if (lookups?.grant) {
        along.grant = lookups.grant;
        lookups.grant = undefined;
      }
      if (this.name === 'Session' && lookups) {
        lookups.sessions.clear();
        if (lookups.activity && lookups.activity.sessionUid === payload.uid) {
          along.activity = lookups.activity;
          lookups.activity = undefined;
        }
      }
      if (!(await store.oidc.upsert(this.name, id, payload as Payload, kept, along))) throw new errors.InvalidGrant('grant revoked');
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') {
        const client = await store.clients.find(id);
        // A disabled client is one oidc-provider does not know: invalid_client everywhere, and its tokens
        // are found without their client (inactive at introspection, refused at userinfo).
        if (!client || client.disabledAt) return undefined;
        return { ...client.metadata, client_id: client.clientId, ...(client.secret ? { client_secret: client.secret } : {}) } as AdapterPayload;
      }
      const lookups = requestLookups();
      await flushGrant(lookups);
      if (lookups && TOKEN_KINDS.has(this.name)) return (await findToken(lookups, this.name, id)) as AdapterPayload | undefined;
      if (lookups && this.name === 'Interaction') {
        // A sign-in's page: its progress and user come with it. Resuming after a sign-in: the account it names
        // and its consent for the app.
        const found = await store.oidc.findInteraction(id);
        if (found) lookups.progress.set(id, found.progress);
        if (found?.accountId) {
          lookups.accounts.set(found.accountId, found.account);
          if (found.clientId) lookups.consents.set(consentKey(found.accountId, found.clientId), found.consent);
        }
        return found?.payload as AdapterPayload | undefined;
      }
      // The grant as this request's token lookup read it, taken once (undefined when it read none).
      const taken = this.name === 'Grant' ? take(lookups?.grants, id) : undefined;
      if (taken) return taken.value as AdapterPayload | undefined;
      return (await store.oidc.find(this.name, id)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      await flushGrant(requestLookups());
      return (await store.oidc.findByUserCode(this.name, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const lookups = requestLookups();
      await flushGrant(lookups);
      // The session as this request's token lookup read it, taken once (undefined when it read none).
      const taken = this.name === 'Session' ? take(lookups?.sessions, uid) : undefined;
      if (taken) return taken.value as AdapterPayload | undefined;
      return (await store.oidc.findByUid(this.name, uid)) as AdapterPayload | undefined;
    }

    /**
     * oidc-provider checks `consumed` and then consumes, two steps that two instances (or two parallel
     * requests) can interleave. The conditional write decides: the loser gets invalid_grant, so a code
     * or a rotating refresh token is redeemed exactly once. A second use is a replay whether it comes
     * after the first or alongside it (RFC 9700 §4.5.3): like oidc-provider for the later one, the grant
     * is revoked with whatever the first use issued, and the mark keeps it so if the first is still storing.
     */
    async consume(id: string): Promise<void> {
      await flushGrant(requestLookups());
      if (!(await store.oidc.consume(this.name, id))) {
        if (this.name === 'PushedAuthorizationRequest') throw new errors.InvalidRequestUri('request_uri already used');
        const grantId = this.name === 'AuthorizationCode' || this.name === 'RefreshToken' ? await store.oidc.grantOf(this.name, id) : undefined;
        if (grantId) {
          forgetGrant(grantId);
          await store.oidc.revokeGrant(grantId, revokedGrantSeconds);
        }
        throw new errors.InvalidGrant(`${this.name === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
      }
    }

    /**
     * A destroyed grant is revoked for good (a code redeemed twice, a refresh token replayed, a sign-out,
     * "Remove access"): no token of it is stored or found again, even one a parallel request was issuing.
     */
    async destroy(id: string): Promise<void> {
      await flushGrant(requestLookups());
      if (this.name === 'Grant') {
        forgetGrant(id);
        await store.oidc.revokeGrant(id, revokedGrantSeconds);
      }
      else {
        if (this.name === 'Session') requestLookups()?.sessions.clear();
        await store.oidc.destroy(this.name, id);
      }
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await flushGrant(requestLookups());
      await store.oidc.revokeByGrantId(this.name, grantId);
    }
  };
}
