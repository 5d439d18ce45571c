/**
 * Registered OIDC clients. The secret is sealed at rest (client_secret_jwt needs it in the clear); after a
 * rotation the one before it is kept sealed too, with the end of its grace period, and a disabled client
 * stays in the table with the time it was disabled.
 * A running server reuses lookups (client-cache.ts); every write here announces the client it changed on
 * CLIENT_CHANGES, so that servers following the changes forget it at once.
 */
import { createClientCache } from './client-cache.ts';
import { deleted, prepared, type Database, type Db } from './db.ts';
import type { StopListening } from './listen.ts';
import type { Sealer } from './seal.ts';

export interface StoredClient {
  clientId: string;
  name: string;
  /** oidc-provider client metadata, without the secret. */
  metadata: Record<string, unknown>;
  secret: string | undefined;
  /** The secret before the last rotation and when it stops working; undefined when there is none. */
  previousSecret: { secret: string; expiresAt: Date } | undefined;
  /** Set while the client is disabled: oidc-provider does not find it. */
  disabledAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  client_id: string; name: string; metadata: Record<string, unknown>; secret_sealed: string | null;
  previous_secret_sealed: string | null; previous_secret_expires_at: Date | null; disabled_at: Date | null;
  created_at: Date; updated_at: Date;
}

/** Its columns named, not `*`: a prepared statement's result type is fixed (see users.ts USER_COLUMNS). */
const CLIENT_COLUMNS = [
  'client_id', 'name', 'metadata', 'secret_sealed', 'previous_secret_sealed', 'previous_secret_expires_at', 'disabled_at', 'created_at', 'updated_at',
] as const satisfies readonly (keyof Row)[];
const allClientColumns: Record<Exclude<keyof Row, (typeof CLIENT_COLUMNS)[number]>, never> = {};
void allClientColumns;
const CLIENT_FIND_SQL = `select ${CLIENT_COLUMNS.join(', ')} from clients where client_id = $1 limit 1`;

const PURPOSE = 'client_secret';

/** The notification channel on which every change to a client is announced (payload: its client_id). */
export const CLIENT_CHANGES = 'latchkey_client_changes';

/** A cached value is shared by every caller: frozen all the way down, so none can change it for the next. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function clientsRepository(db: Db, sealer: Sealer) {
  const toClient = (r: Row): StoredClient => ({
    clientId: r.client_id,
    name: r.name,
    metadata: r.metadata,
    secret: r.secret_sealed ? sealer.open(r.secret_sealed, `${PURPOSE}:${r.client_id}`) : undefined,
    previousSecret: r.previous_secret_sealed && r.previous_secret_expires_at
      ? { secret: sealer.open(r.previous_secret_sealed, `${PURPOSE}:${r.client_id}`), expiresAt: r.previous_secret_expires_at }
      : undefined,
    disabledAt: r.disabled_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
  const cache = createClientCache<StoredClient>();
  /** One write to one client, announced at commit; the changed row, or undefined when no row matched. */
  const change = async (clientId: string, write: (trx: Db) => Promise<Row[]>): Promise<StoredClient | undefined> => {
    try {
      return await db.transaction(async (trx) => {
        const [row] = await write(trx);
        if (row) await trx.raw('select pg_notify(?, ?)', [CLIENT_CHANGES, clientId]);
        return row && toClient(row);
      });
    } finally {
      cache.forget(clientId);
    }
  };
  /** Every protocol request's client lookup: a prepared statement (db.ts), not the query builder. */
  const load = async (clientId: string) => {
    const [row] = await prepared<Row>(db, 'client_find', CLIENT_FIND_SQL, [clientId]);
    return row && deepFreeze(toClient(row));
  };
  return {
    async insert(c: { clientId: string; name: string; metadata: Record<string, unknown>; secret?: string }): Promise<void> {
      await db<Row>('clients').insert({
        client_id: c.clientId,
        name: c.name,
        metadata: JSON.stringify(c.metadata) as unknown as Record<string, unknown>,
        secret_sealed: c.secret ? sealer.seal(c.secret, `${PURPOSE}:${c.clientId}`) : null,
      });
    },
    /** The client, possibly from the cache (frozen); see followChanges. */
    find(clientId: string): Promise<StoredClient | undefined> {
      return cache.lookup(clientId, load);
    },
    async list(): Promise<Omit<StoredClient, 'secret' | 'previousSecret'>[]> {
      const rows = await db<Row>('clients').orderBy('created_at', 'asc');
      return rows.map(({ client_id, name, metadata, disabled_at, created_at, updated_at }) => ({
        clientId: client_id, name, metadata, disabledAt: disabled_at, createdAt: created_at, updatedAt: updated_at,
      }));
    },
    /**
     * Replaces the name and metadata, unless they are no longer `expected` (another edit came first):
     * undefined then, and nothing is written.
     */
    update(clientId: string, expected: { name: string; metadata: Record<string, unknown> }, c: { name: string; metadata: Record<string, unknown> }): Promise<StoredClient | undefined> {
      return change(clientId, (trx) => trx<Row>('clients').where({ client_id: clientId, name: expected.name })
        .whereRaw('metadata = ?::jsonb', [JSON.stringify(expected.metadata)])
        .update({ name: c.name, metadata: JSON.stringify(c.metadata) as unknown as Record<string, unknown>, updated_at: trx.fn.now() as unknown as Date })
        .returning('*'));
    },
    /**
     * Seals `secret` as the client's secret; the one it replaces keeps working for `graceSeconds` (not at all
     * with 0). A secret rotated out before it is dropped: there is one previous secret at most.
     */
    rotateSecret(clientId: string, secret: string, graceSeconds: number): Promise<StoredClient | undefined> {
      return change(clientId, (trx) => trx<Row>('clients').where({ client_id: clientId }).whereNotNull('secret_sealed')
        .update({
          previous_secret_sealed: graceSeconds > 0 ? trx.ref('secret_sealed') as unknown as string : null,
          previous_secret_expires_at: graceSeconds > 0 ? trx.raw(`now() + make_interval(secs => ?)`, [graceSeconds]) as unknown as Date : null,
          secret_sealed: sealer.seal(secret, `${PURPOSE}:${clientId}`),
          updated_at: trx.fn.now() as unknown as Date,
        })
        .returning('*'));
    },
    /** Disables (true) or enables the client; undefined when it was already so, or there is no such client. */
    setDisabled(clientId: string, disabled: boolean): Promise<StoredClient | undefined> {
      return change(clientId, (trx) => trx<Row>('clients').where({ client_id: clientId })
        .where((q) => (disabled ? q.whereNull('disabled_at') : q.whereNotNull('disabled_at')))
        .update({ disabled_at: disabled ? trx.fn.now() as unknown as Date : null, updated_at: trx.fn.now() as unknown as Date })
        .returning('*'));
    },
    async remove(clientId: string): Promise<boolean> {
      try {
        return await db.transaction(async (trx) => {
          const removed = (await deleted(trx('clients').where({ client_id: clientId }).delete())) > 0;
          if (removed) await trx.raw('select pg_notify(?, ?)', [CLIENT_CHANGES, clientId]);
          return removed;
        });
      } finally {
        cache.forget(clientId);
      }
    },
    /**
     * Starts reusing lookups, for as long as this process hears the changes announced by every process on
     * the database (a server does this; a CLI run does not, and always reads the database).
     */
    followChanges(database: Database): Promise<StopListening> {
      return database.listen(CLIENT_CHANGES, { message: (clientId) => cache.forget(clientId), live: (on) => cache.setLive(on) });
    },
  };
}

export type ClientsRepository = ReturnType<typeof clientsRepository>;
