/**
 * Hearing database notifications (LISTEN / pg_notify, delivered when the writer commits) from every
 * process on the same database. `live(true)` is called once listening works and `live(false)` when it
 * stops working: in between, notifications may have been missed. On PostgreSQL a dedicated connection
 * listens, is pinged every few seconds, and reconnects a second after it is lost (the database away: the
 * attempts go on until it is back); the embedded database is one process, so it never drops.
 */
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

export interface ListenHandlers {
  message(payload: string): void;
  live(on: boolean): void;
}

export type StopListening = () => Promise<void>;

const RETRY_MS = 1000;
/**
 * A connection attempt (or its LISTEN) that gets no answer, packets dropped, is given up after this long and tried again,
 * so the listener comes back by itself once the database does; TCP keepalive notices a connection that
 * died while idle.
 */
const CONNECT_TIMEOUT_MS = 3000;
/**
 * How often a listening connection is asked `select 1`: a connection that stopped carrying packets while
 * idle says nothing for minutes (TCP keepalive's probes are slow), and meanwhile notifications are missed.
 * An unanswered or failed ping within CONNECT_TIMEOUT_MS counts as lost: `live(false)`, then reconnect.
 */
const PING_MS = 5000;
/** How long stopping waits for the listening connection's polite end before it drops the socket. */
const END_WAIT_MS = 1000;

/**
 * Ends `client`, waiting at most END_WAIT_MS: on a connection whose packets go nowhere, pg's `end()`
 * waits for the database's side of the close, which never comes. Then the socket is dropped.
 */
export async function endWithin(client: pg.Client, ms = END_WAIT_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(() => true, () => true);
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms).unref()));
  if (!(await Promise.race([ended, late]))) {
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
  clearTimeout(timer);
}

function checkChannel(channel: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`not a channel name: ${channel}`);
  return channel;
}

export async function listenPostgres(url: string, channel: string, handlers: ListenHandlers): Promise<StopListening> {
  checkChannel(channel);
  let current: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  let ping: NodeJS.Timeout | undefined;

  const lost = (client: pg.Client) => {
    if (current !== client) return;
    current = undefined;
    clearInterval(ping);
    handlers.live(false);
    void endWithin(client);
    if (!stopped) retry = setTimeout(() => void connect(), RETRY_MS).unref();
  };
  const connect = async (): Promise<void> => {
    const client = new pg.Client({
      connectionString: url, application_name: 'latchkey-listen',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS, query_timeout: CONNECT_TIMEOUT_MS, keepAlive: true, keepAliveInitialDelayMillis: 10_000,
    });
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
      // Not awaited: ending a connection whose packets go nowhere takes END_WAIT_MS.
      lost(client);
      void endWithin(client);
      return;
    }
    if (stopped || current !== client) {
      await endWithin(client);
      return;
    }
    handlers.live(true);
    let pinging = false;
    ping = setInterval(() => {
      if (pinging) return;
      pinging = true;
      client.query('select 1').then(() => (pinging = false), () => lost(client));
    }, PING_MS).unref();
  };

  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    clearInterval(ping);
    const client = current;
    current = undefined;
    handlers.live(false);
    if (client) await endWithin(client);
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
