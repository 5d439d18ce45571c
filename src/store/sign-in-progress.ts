/**
 * What a sign-in in progress has proved, keyed by its oidc-provider interaction: written after the
 * password when a second step is needed, extended by each proof, deleted when the sign-in ends. It grants
 * nothing: only interaction/grant.ts hands oidc-provider a login, once the proofs meet the requirement.
 */
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

interface Row {
  interaction_uid: string; user_id: string; proofs: StoredProof[]; reasons: string[];
  requirement: Record<string, unknown>; passkey_capable: boolean | null; keep_signed_in: boolean; complete: boolean; expires_at: Date;
}

const toProgress = (r: Row): Progress => ({
  interactionUid: r.interaction_uid, userId: r.user_id, proofs: r.proofs, reasons: r.reasons, requirement: r.requirement,
  passkeyCapable: r.passkey_capable, keepSignedIn: r.keep_signed_in, complete: r.complete,
});

export function signInProgressRepository(db: Db) {
  return {
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
