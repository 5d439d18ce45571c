/** Signing keys: one active key per algorithm; retired keys stay published until their tokens expire. */
import { deleted, type Db } from './db.ts';
import type { Sealer } from './seal.ts';

export type KeyAlg = 'RS256' | 'ES256' | 'EdDSA';
export type JsonWebKey = Record<string, unknown> & { kid: string; alg: string };

export interface SigningKey {
  kid: string;
  alg: KeyAlg;
  state: 'active' | 'retired';
  publicJwk: JsonWebKey;
  createdAt: Date;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

interface Row {
  kid: string; alg: KeyAlg; state: 'active' | 'retired'; public_jwk: JsonWebKey; private_sealed: string;
  created_at: Date; retired_at: Date | null; expires_at: Date | null;
}

const purpose = (kid: string) => `signing_key:${kid}`;

const toKey = (r: Row): SigningKey => ({
  kid: r.kid, alg: r.alg, state: r.state, publicJwk: r.public_jwk, createdAt: r.created_at,
  retiredAt: r.retired_at, expiresAt: r.expires_at,
});

export function signingKeysRepository(db: Db, sealer: Sealer) {
  return {
    /** Active keys first (newest first), then retired keys still within their publication window. */
    async published(): Promise<(SigningKey & { privateJwk: JsonWebKey })[]> {
      const rows = await db<Row>('signing_keys')
        .where({ state: 'active' })
        .orWhere((q) => q.where({ state: 'retired' }).andWhere('expires_at', '>', db.fn.now()))
        .orderByRaw(`case state when 'active' then 0 else 1 end, created_at desc`);
      return rows.map((r) => ({ ...toKey(r), privateJwk: JSON.parse(sealer.open(r.private_sealed, purpose(r.kid))) as JsonWebKey }));
    },

    async list(): Promise<SigningKey[]> {
      const rows = await db<Row>('signing_keys').orderBy('created_at', 'desc');
      return rows.map(toKey);
    },

    /** A cheap fingerprint of the published set, polled by every instance. */
    async version(): Promise<string> {
      const rows = await db<Row>('signing_keys')
        .where({ state: 'active' })
        .orWhere((q) => q.where({ state: 'retired' }).andWhere('expires_at', '>', db.fn.now()))
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

    /** Retires the active key of `alg` (published until `keepPublishedSeconds` from now) and activates the new one. */
    async rotate(alg: KeyAlg, publicJwk: JsonWebKey, privateJwk: JsonWebKey, keepPublishedSeconds: number): Promise<void> {
      await db.transaction(async (trx) => {
        await trx('signing_keys')
          .where({ alg, state: 'active' })
          .update({
            state: 'retired',
            retired_at: trx.fn.now(),
            expires_at: trx.raw(`now() + make_interval(secs => ?)`, [keepPublishedSeconds]),
          });
        await trx('signing_keys').insert({
          kid: publicJwk.kid, alg, state: 'active', public_jwk: JSON.stringify(publicJwk),
          private_sealed: sealer.seal(JSON.stringify(privateJwk), purpose(publicJwk.kid)),
        });
      });
    },

    /** Retires one active key (published until `keepPublishedSeconds` from now); undefined when no active key has that kid. */
    async retire(kid: string, keepPublishedSeconds: number): Promise<SigningKey | undefined> {
      const [row] = await db<Row>('signing_keys')
        .where({ kid, state: 'active' })
        .update({
          state: 'retired',
          retired_at: db.fn.now() as unknown as Date,
          expires_at: db.raw(`now() + make_interval(secs => ?)`, [keepPublishedSeconds]) as unknown as Date,
        })
        .returning('*');
      return row && toKey(row);
    },

    /** Deletes retired keys whose tokens have all expired. */
    async purge(): Promise<number> {
      return deleted(db('signing_keys').where({ state: 'retired' }).andWhere('expires_at', '<=', db.fn.now()).delete());
    },
  };
}

export type SigningKeysRepository = ReturnType<typeof signingKeysRepository>;
