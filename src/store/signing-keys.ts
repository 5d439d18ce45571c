/**
 * Signing keys: one active key per algorithm; a rotated-in key is published first as `next` (signing
 * nothing) and promoted at its `activates_at`; retired keys stay published until their tokens expire.
 */
import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { deleted, type Db } from './db.ts';
import type { Sealer } from './seal.ts';

export type KeyAlg = 'RS256' | 'ES256' | 'EdDSA';
export type JsonWebKey = Record<string, unknown> & { kid: string; alg: string };

export interface SigningKey {
  kid: string;
  alg: KeyAlg;
  state: KeyState;
  publicJwk: JsonWebKey;
  createdAt: Date;
  /** When a `next` key starts signing; null once active. */
  activatesAt: Date | null;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

export type KeyState = 'next' | 'active' | 'retired';

interface Row {
  kid: string; alg: KeyAlg; state: KeyState; public_jwk: JsonWebKey; private_sealed: string;
  created_at: Date; activates_at: Date | null; retired_at: Date | null; expires_at: Date | null;
}

const purpose = (kid: string) => `signing_key:${kid}`;

/**
 * The transaction-level advisory lock that rotations, retirements and promotions take first, so they run
 * one at a time across instances: without it a promotion and a `rotate --now` lock the active and the next
 * rows in opposite orders (a deadlock), and two instances promoting two due keys of one algorithm can both
 * find the key to retire already gone. The first 8 bytes of SHA-256("latchkey:signing-keys").
 */
const KEY_WRITERS_LOCK = createHash('sha256').update('latchkey:signing-keys').digest().readBigInt64BE(0).toString();

const toKey = (r: Row): SigningKey => ({
  kid: r.kid, alg: r.alg, state: r.state, publicJwk: r.public_jwk, createdAt: r.created_at,
  activatesAt: r.activates_at, retiredAt: r.retired_at, expiresAt: r.expires_at,
});

/** Every key in the JWKS: the active and next keys, and the retired ones within their publication window. */
const publishedKeys = (db: Db) => (q: Knex.QueryBuilder) =>
  q.whereIn('state', ['active', 'next']).orWhere((r) => r.where({ state: 'retired' }).andWhere('expires_at', '>', db.fn.now()));

export function signingKeysRepository(db: Db, sealer: Sealer) {
  return {
    /** Active keys first, then next keys, then retired keys still within their publication window (newest first in each). */
    async published(): Promise<(SigningKey & { privateJwk: JsonWebKey })[]> {
      const rows = await db<Row>('signing_keys')
        .where(publishedKeys(db))
        .orderByRaw(`case state when 'active' then 0 when 'next' then 1 else 2 end, created_at desc`);
      return rows.map((r) => ({ ...toKey(r), privateJwk: JSON.parse(sealer.open(r.private_sealed, purpose(r.kid))) as JsonWebKey }));
    },

    async list(): Promise<SigningKey[]> {
      const rows = await db<Row>('signing_keys').orderBy('created_at', 'desc');
      return rows.map(toKey);
    },

    /** A cheap fingerprint of the published set, polled by every instance. */
    async version(): Promise<string> {
      const rows = await db<Row>('signing_keys')
        .where(publishedKeys(db))
        .orderBy('kid')
        .select('kid', 'state');
      return rows.map((r) => `${r.kid}:${r.state}`).join(',');
    },

    /** Inserts an active key unless another instance got there first; returns whether it was inserted. */
    async insertActiveIfMissing(alg: KeyAlg, publicJwk: JsonWebKey, privateJwk: JsonWebKey): Promise<boolean> {
      const res = await db.raw(
        `insert into signing_keys (kid, alg, state, public_jwk, private_sealed)
         select ?, ?, 'active', ?::jsonb, ? where not exists (select 1 from signing_keys where alg = ? and state = 'active')
         on conflict do nothing returning kid`,
        [publicJwk.kid, alg, JSON.stringify(publicJwk), sealer.seal(JSON.stringify(privateJwk), purpose(publicJwk.kid)), alg],
      );
      return (res.rows as unknown[]).length > 0;
    },

    /**
     * Adds a new key of `alg`, published at once. With an active key of `alg` it waits as `next`, signing
     * nothing, until `activateAfterSeconds` from now (`promoteDue` then makes it the active key); with none
     * (or with `activateAfterSeconds` 0) it is active at once, the old one retired, published until
     * `keepPublishedSeconds` from now, and any key still waiting for its turn dropped. Returns when it starts signing.
     */
    async rotate(alg: KeyAlg, publicJwk: JsonWebKey, privateJwk: JsonWebKey, keepPublishedSeconds: number, activateAfterSeconds: number): Promise<Date> {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(?::bigint)', [KEY_WRITERS_LOCK]);
        const sealed = sealer.seal(JSON.stringify(privateJwk), purpose(publicJwk.kid));
        const [active] = await trx<Row>('signing_keys').where({ alg, state: 'active' }).forUpdate().select('kid');
        if (active && activateAfterSeconds > 0) {
          const [row] = await trx('signing_keys')
            .insert({
              kid: publicJwk.kid, alg, state: 'next', public_jwk: JSON.stringify(publicJwk), private_sealed: sealed,
              activates_at: trx.raw(`now() + make_interval(secs => ?)`, [activateAfterSeconds]),
            })
            .returning('activates_at');
          return (row as { activates_at: Date }).activates_at;
        }
        await retireActive(trx, alg, keepPublishedSeconds);
        // A key still waiting for its turn would take over from this one: it never signed, so it goes.
        await trx('signing_keys').where({ alg, state: 'next' }).update({ state: 'retired', retired_at: trx.fn.now(), expires_at: trx.fn.now(), activates_at: null });
        const [row] = await trx('signing_keys')
          .insert({ kid: publicJwk.kid, alg, state: 'active', public_jwk: JSON.stringify(publicJwk), private_sealed: sealed })
          .returning('created_at');
        return (row as { created_at: Date }).created_at;
      });
    },

    /**
     * Makes each `next` key whose time has come the active key of its algorithm (the newest one, when
     * several are due), retiring the key it replaces. Run by every instance before it looks for changed
     * keys; rows another instance is promoting are skipped, so each key is promoted once. The kids promoted.
     */
    async promoteDue(keepPublishedSeconds: number): Promise<string[]> {
      return db.transaction(async (trx) => {
        const { rows: [lock] } = await trx.raw<{ rows: { taken: boolean }[] }>('select pg_try_advisory_xact_lock(?::bigint) as taken', [KEY_WRITERS_LOCK]);
        if (!lock?.taken) return []; // another instance is promoting, or a key is being rotated or retired
        const due = await trx<Row>('signing_keys')
          .where({ state: 'next' })
          .andWhere('activates_at', '<=', trx.fn.now())
          .orderBy([{ column: 'activates_at', order: 'desc' }, { column: 'created_at', order: 'desc' }])
          .forUpdate()
          .skipLocked()
          .select('kid', 'alg');
        const promoted: string[] = [];
        const algs = new Set<KeyAlg>();
        for (const { kid, alg } of due) {
          if (algs.has(alg)) {
            // An older key of the same algorithm, overtaken by a later rotation: it never signed anything.
            await trx('signing_keys').where({ kid }).update({ state: 'retired', retired_at: trx.fn.now(), expires_at: trx.fn.now(), activates_at: null });
            continue;
          }
          await retireActive(trx, alg, keepPublishedSeconds);
          await trx('signing_keys').where({ kid }).update({ state: 'active', activates_at: null });
          algs.add(alg);
          promoted.push(kid);
        }
        return promoted;
      });
    },

    /** Retires one active key (published until `keepPublishedSeconds` from now); undefined when no active key has that kid. */
    async retire(kid: string, keepPublishedSeconds: number): Promise<SigningKey | undefined> {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(?::bigint)', [KEY_WRITERS_LOCK]);
        const [key] = await trx<Row>('signing_keys').where({ kid }).whereIn('state', ['active', 'next']).select('alg', 'state');
        if (!key) return undefined;
        if (key.state === 'next') {
          // Withdrawn before its turn: it never signed, so it leaves the JWKS with the next purge.
          const [row] = await trx<Row>('signing_keys').where({ kid }).update({ state: 'retired', retired_at: trx.fn.now() as unknown as Date, expires_at: trx.fn.now() as unknown as Date, activates_at: null }).returning('*');
          return row && toKey(row);
        }
        // The algorithm is given up: a key waiting for its turn must not take it up again.
        await trx('signing_keys').where({ alg: key.alg, state: 'next' }).update({ state: 'retired', retired_at: trx.fn.now(), expires_at: trx.fn.now(), activates_at: null });
        const [row] = await trx<Row>('signing_keys')
          .where({ kid, state: 'active' })
          .update({
            state: 'retired',
            retired_at: trx.fn.now() as unknown as Date,
            expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keepPublishedSeconds]) as unknown as Date,
          })
          .returning('*');
        return row && toKey(row);
      });
    },

    /** Deletes retired keys whose tokens have all expired. */
    async purge(): Promise<number> {
      return deleted(db('signing_keys').where({ state: 'retired' }).andWhere('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

/** Retires the active key of `alg`, published until `keepPublishedSeconds` from now. */
async function retireActive(trx: Knex.Transaction, alg: KeyAlg, keepPublishedSeconds: number): Promise<void> {
  await trx('signing_keys')
    .where({ alg, state: 'active' })
    .update({
      state: 'retired',
      retired_at: trx.fn.now(),
      expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keepPublishedSeconds]),
    });
}

export type SigningKeysRepository = ReturnType<typeof signingKeysRepository>;
