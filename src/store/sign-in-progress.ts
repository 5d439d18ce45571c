/**
 * What a sign-in in progress has proved, keyed by its oidc-provider interaction: written after the
 * password when a second step is needed, extended by each proof, deleted when the sign-in ends. It grants
 * nothing: only interaction/grant.ts hands oidc-provider a login, once the proofs meet the requirement.
 */
import { randomUUID } from 'node:crypto';
import { deleted, type Db } from './db.ts';

export interface StoredProof {
  kind: string;
  authenticatorId: string;
  amr: string[];
  category: string;
  phishingResistant: boolean;
}

export interface Progress<P = StoredProof, R = Record<string, unknown>> {
  interactionUid: string;
  userId: string;
  proofs: P[];
  reasons: string[];
  requirement: R;
  /** The browser has a platform authenticator: true, false, or null when its script never said. */
  passkeyCapable: boolean | null;
  /** "Keep me signed in": a long session cookie, or one that ends with the browser. */
  keepSignedIn: boolean;
  /** Every proof needed is there; only the passkey offer is still on screen. */
  complete: boolean;
}

export interface Row {
  interaction_uid: string; user_id: string; proofs: StoredProof[]; reasons: string[];
  requirement: Record<string, unknown>; passkey_capable: boolean | null; keep_signed_in: boolean; complete: boolean; expires_at: Date;
}

/** The columns of a row, named (for a statement that reads one with something else). */
export const PROGRESS_COLUMNS = ['interaction_uid', 'user_id', 'proofs', 'reasons', 'requirement', 'passkey_capable', 'keep_signed_in', 'complete', 'expires_at'] as const satisfies readonly (keyof Row)[];

export const toProgress = (r: Row): Progress => ({
  interactionUid: r.interaction_uid, userId: r.user_id, proofs: r.proofs, reasons: r.reasons, requirement: r.requirement,
  passkeyCapable: r.passkey_capable, keepSignedIn: r.keep_signed_in, complete: r.complete,
});

/** What the end of a completed sign-in writes (`finish`). */
export interface Finish {
  interactionUid: string;
  /** Its pending steps' binding. */
  binding: string;
  userId: string;
  device: { deviceHash: string; userAgent: string | null; ip: string | null };
  /** The network it came from, with its place when known; undefined without one. */
  network?: { prefix: string; country: string | null; latitude: number | null; longitude: number | null };
  /** The account's failure counter, cleared. */
  counterKey: string;
  language: string;
  /** The `sign_in.succeeded` event: its details as they are when the device was known, and when it is new. */
  event: { type: string; ip: string | null; userAgent: string | null; details: Record<string, unknown>; detailsIfNew: Record<string, unknown> };
}

/**
 * The end of a completed sign-in in one statement: the device and the network known (or seen again), the
 * account's failure counter cleared, the language kept, the record of the sign-in and its pending steps
 * gone, and its event stored (with `detailsIfNew` when the device was not known). Each part is what the
 * devices, networks, counters, users, pending steps and security events repositories write for it.
 * `devicesBefore`: how many devices the user had before it; `added`: this one was new.
 */
const finishSql = (network: boolean) => `with before as (select count(id)::int as n from devices where user_id = ?),
  device as (insert into devices (id, user_id, device_hash, user_agent, ip) values (?, ?, ?, ?, ?)
    on conflict (user_id, device_hash) do update set user_agent = excluded.user_agent, ip = excluded.ip, last_seen_at = now()
    returning (xmax = 0) as added),
  ${network ? `network as (insert into user_networks (user_id, prefix, country, latitude, longitude) values (?, ?, ?, ?, ?)
    on conflict (user_id, prefix) do update set country = excluded.country, latitude = excluded.latitude,
      longitude = excluded.longitude, last_seen_at = now()),` : ''}
  cleared as (delete from counters where key = ?),
  language as (update users set language = ? where id = ? and (language is null or language <> ?)),
  progress as (delete from sign_in_progress where interaction_uid = ?),
  steps as (delete from pending_steps where binding = ?),
  event as (insert into security_events (user_id, type, ip, user_agent, details)
    select ?, ?, ?, ?, case when device.added then ?::jsonb else ?::jsonb end from device)
  select (select n from before) as devices_before, (select added from device) as added`;

export function signInProgressRepository(db: Db) {
  return {
    async finish(f: Finish): Promise<{ devicesBefore: number; added: boolean }> {
      const { device, network, event } = f;
      const res = await db.raw(finishSql(!!network), [
        f.userId,
        randomUUID(), f.userId, device.deviceHash, device.userAgent?.slice(0, 512) ?? null, device.ip,
        ...(network ? [f.userId, network.prefix, network.country, network.latitude, network.longitude] : []),
        f.counterKey,
        f.language, f.userId, f.language,
        f.interactionUid,
        f.binding,
        f.userId, event.type, event.ip, event.userAgent?.slice(0, 512) ?? null, JSON.stringify(event.detailsIfNew), JSON.stringify(event.details),
      ]);
      const row = (res.rows as { devices_before: number; added: boolean }[])[0];
      return { devicesBefore: Number(row?.devices_before ?? 0), added: row?.added === true };
    },
    /** Starts (or restarts, after the password again) the record of a sign-in. */
    async start(p: Progress<object, object>, ttlSeconds: number): Promise<void> {
      await db.raw(
        `insert into sign_in_progress (interaction_uid, user_id, proofs, reasons, requirement, passkey_capable, keep_signed_in, complete, expires_at)
         values (?, ?, ?::jsonb, ?::jsonb, ?::jsonb, ?, ?, ?, now() + make_interval(secs => ?))
         on conflict (interaction_uid) do update set user_id = excluded.user_id, proofs = excluded.proofs,
           reasons = excluded.reasons, requirement = excluded.requirement, passkey_capable = excluded.passkey_capable, keep_signed_in = excluded.keep_signed_in,
           complete = excluded.complete, expires_at = excluded.expires_at`,
        [p.interactionUid, p.userId, JSON.stringify(p.proofs), JSON.stringify(p.reasons), JSON.stringify(p.requirement),
          p.passkeyCapable, p.keepSignedIn, p.complete, ttlSeconds],
      );
    },
    /** Takes the finished record out (the passkey offer answered): for exactly one caller. */
    async takeComplete(interactionUid: string): Promise<Progress | undefined> {
      const res = await db.raw('delete from sign_in_progress where interaction_uid = ? and complete and expires_at > now() returning *', [interactionUid]);
      const row = (res.rows as Row[])[0];
      return row && toProgress(row);
    },
    async find(interactionUid: string): Promise<Progress | undefined> {
      const row = await db<Row>('sign_in_progress').where({ interaction_uid: interactionUid }).andWhere('expires_at', '>', db.fn.now()).first();
      return row && toProgress(row);
    },
    /** Appends a proof for the same user in one statement; the record as it is now, or undefined when it is gone. */
    async addProof(interactionUid: string, userId: string, proof: object): Promise<Progress | undefined> {
      const res = await db.raw(
        `update sign_in_progress set proofs = proofs || ?::jsonb
         where interaction_uid = ? and user_id = ? and expires_at > now() returning *`,
        [JSON.stringify([proof]), interactionUid, userId],
      );
      const row = (res.rows as Row[])[0];
      return row && toProgress(row);
    },
    async delete(interactionUid: string): Promise<void> {
      await db('sign_in_progress').where({ interaction_uid: interactionUid }).delete();
    },
    async purge(): Promise<number> {
      return deleted(db('sign_in_progress').where('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type SignInProgressRepository = ReturnType<typeof signInProgressRepository>;
