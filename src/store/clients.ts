/**
 * Registered OIDC clients. The secret is sealed at rest (client_secret_jwt needs it in the clear).
 * A running server reuses lookups (client-cache.ts); every write here announces the client it changed on
 * CLIENT_CHANGES, so that servers following the changes forget it at once.
 */
import { createClientCache } from './client-cache.ts';
import { deleted, type Database, type Db } from './db.ts';
import type { StopListening } from './listen.ts';
import type { Sealer } from './seal.ts';

export interface StoredClient {
  clientId: string;
  name: string;
  /** oidc-provider client metadata, without the secret. */
  metadata: Record<string, unknown>;
  secret: string | undefined;
  createdAt: Date;
}

interface Row {
  client_id: string; name: string; metadata: Record<string, unknown>; secret_sealed: string | null;
  created_at: Date; updated_at: Date;
}

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
    createdAt: r.created_at,
  });
  const cache = createClientCache<StoredClient>();
  const load = async (clientId: string) => {
    const row = await db<Row>('clients').where({ client_id: clientId }).first();
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
    async list(): Promise<Omit<StoredClient, 'secret'>[]> {
      const rows = await db<Row>('clients').orderBy('created_at', 'asc');
      return rows.map(({ client_id, name, metadata, created_at }) => ({ clientId: client_id, name, metadata, createdAt: created_at }));
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
