/** Registered OIDC clients. The secret is sealed at rest (client_secret_jwt needs it in the clear). */
import { deleted, type Db } from './db.ts';
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

export function clientsRepository(db: Db, sealer: Sealer) {
  const toClient = (r: Row): StoredClient => ({
    clientId: r.client_id,
    name: r.name,
    metadata: r.metadata,
    secret: r.secret_sealed ? sealer.open(r.secret_sealed, `${PURPOSE}:${r.client_id}`) : undefined,
    createdAt: r.created_at,
  });
  return {
    async insert(c: { clientId: string; name: string; metadata: Record<string, unknown>; secret?: string }): Promise<void> {
      await db<Row>('clients').insert({
        client_id: c.clientId,
        name: c.name,
        metadata: JSON.stringify(c.metadata) as unknown as Record<string, unknown>,
        secret_sealed: c.secret ? sealer.seal(c.secret, `${PURPOSE}:${c.clientId}`) : null,
      });
    },
    async find(clientId: string): Promise<StoredClient | undefined> {
      const row = await db<Row>('clients').where({ client_id: clientId }).first();
      return row && toClient(row);
    },
    async list(): Promise<Omit<StoredClient, 'secret'>[]> {
      const rows = await db<Row>('clients').orderBy('created_at', 'asc');
      return rows.map(({ client_id, name, metadata, created_at }) => ({ clientId: client_id, name, metadata, createdAt: created_at }));
    },
    async remove(clientId: string): Promise<boolean> {
      return (await deleted(db('clients').where({ client_id: clientId }).delete())) > 0;
    },
  };
}

export type ClientsRepository = ReturnType<typeof clientsRepository>;
