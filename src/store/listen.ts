/**
 * Hearing database notifications (LISTEN / pg_notify, delivered when the writer commits) from every
 * process on the same database. `live(true)` is called once listening works and `live(false)` when it
 * stops working: in between, notifications may have been missed. On PostgreSQL a dedicated connection
 * listens and reconnects after a second; the embedded database is one process, so it never drops.
 */
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export interface ListenHandlers {
  message(payload: string): void;
  live(on: boolean): void;
}

export type StopListening = () => Promise<void>;

const RETRY_MS = 1000;

function checkChannel(channel: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  return channel;
}

export async function listenPostgres(url: string, channel: string, handlers: ListenHandlers): Promise<StopListening> {
  checkChannel(channel);
  let current: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;

  const lost = (client: pg.Client) => {
    if (current !== client) return;
    current = undefined;
    handlers.live(false);
    client.end().catch(() => {});
    if (!stopped) retry = setTimeout(() => void connect(), RETRY_MS).unref();
  };
  const connect = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: url, application_name: 'latchkey-listen' });
    client.on('error', () => lost(client)); // a dropped connection; without a handler it would end the process
    client.on('end', () => lost(client));
    client.on('notification', (n) => {
      if (n.channel === channel) handlers.message(n.payload ?? '');
    });
    current = client;
    try {
      await client.connect();
      await client.query(`listen ${channel}`);
    } catch {
      lost(client);
      await client.end().catch(() => {});
      return;
    }
    if (stopped || current !== client) {
      await client.end().catch(() => {});
      return;
    }
    handlers.live(true);
  };

  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const client = current;
    current = undefined;
    handlers.live(false);
    await client?.end().catch(() => {});
  };
}

export async function listenPglite(pglite: PGlite, channel: string, handlers: ListenHandlers): Promise<StopListening> {
  const unlisten = await pglite.listen(checkChannel(channel), (payload) => handlers.message(payload));
  handlers.live(true);
  return async () => {
    handlers.live(false);
    if (!pglite.closed) await unlisten();
  };
}
