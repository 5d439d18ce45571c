/**
 * The database: PostgreSQL when a URL is configured, otherwise PGlite (PostgreSQL compiled to WASM)
 * embedded in the process, so both speak one SQL dialect and run the same migrations.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrations, type Migration } from '../../migrations/index.ts';
import { timedStatement } from '../metrics/database.ts';
import { listenPglite, listenPostgres, type ListenHandlers, type StopListening } from './listen.ts';

export type Db = Knex;

export interface Database {
  readonly knex: Knex;
  readonly kind: 'postgres' | 'embedded';
  /** For the embedded database: its directory, or undefined when it lives in memory. */
  readonly dir?: string;
  ping(): Promise<void>;
  migrate(options?: MigrateOptions): Promise<string[]>;
  /** Hears notifications on `channel` from every process on this database (listen.ts); close() stops it too. */
  listen(channel: string, handlers: ListenHandlers): Promise<StopListening>;
  close(): Promise<void>;
}

export interface MigrateOptions {
  /**
   * Told every `waitingReportMs` (10 s) while another instance holds the migration lock (PostgreSQL), with
   * the seconds waited so far; without it, a line on standard error says so.
   */
  onWaiting?: (waitedSeconds: number) => void;
  waitingReportMs?: number;
  /** The migrations to apply: migrations/index.ts' list, unless a test gives its own. */
  migrations?: readonly Migration[];
}

export type DatabaseTarget =
  | {
    url: string; poolMax?: number;
    /**
     * How long one statement may run before PostgreSQL cancels it (`statement_timeout`), in ms; 0 = no
     * bound (the CLI's export, import and purge run long). Unset: DEFAULT_STATEMENT_TIMEOUT_MS.
     */
    statementTimeoutMs?: number;
  }
  | { dir: string } | { memory: true };

/**
 * PostgreSQL's buffer pool inside the embedded database. PGlite reserves 128 MB of WebAssembly memory up
 * front and PostgreSQL's default of 128 MB grows it further; one small instance needs far less, and its
 * data files stay in the operating system's page cache. Idle RSS of the server: 358-391 MB -> 226 MB.
 * Passed on PGlite's command line, so an operator's own postgresql.conf in the data directory is untouched.
 */
const EMBEDDED_SHARED_BUFFERS = '16MB';

/**
 * int8 (counts, bigserial ids) as numbers: the values Latchkey counts stay far below 2^53. Given to
 * Latchkey's own pool only (pg's per-client `types`), so another pg user in the process keeps its strings.
 */
const pgTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as never)) as typeof pg.types.getTypeParser,
};

/**
 * How long PostgreSQL may keep Latchkey waiting (fault tests: test/faults/database-outage.test.ts). A request
 * that needs the database while it is away fails within these bounds, and the error page answers 503
 * (http/errors.ts `databaseUnavailable`), instead of hanging on TCP for minutes:
 * - a new connection (TCP and PostgreSQL's start-up) within CONNECT_TIMEOUT_MS;
 * - a connection from the pool within ACQUIRE_TIMEOUT_MS (all of them busy, or none can be made);
 * - a statement within the statement timeout (`database.statementTimeoutSeconds`): PostgreSQL itself
 *   cancels it (`statement_timeout`, SQLSTATE 57014), which rolls the statement back whole, so a write
 *   cut off there never commits behind a 503;
 * - a statement with no answer at all DEAD_NETWORK_MARGIN_MS after that ends its connection (endWhenSilent).
 */
const CONNECT_TIMEOUT_MS = 3_000;
const ACQUIRE_TIMEOUT_MS = 5_000;
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
/**
 * Beyond the statement timeout, how long a statement may go unanswered before the network is taken for
 * dead: PostgreSQL would have answered by then, with the statement's result or its cancellation.
 */
export const DEAD_NETWORK_MARGIN_MS = 5_000;
/** How long close() waits for the pool's connections to end politely before dropping them. */
const CLOSE_WAIT_MS = 2_000;

/**
 * The dead-network backstop: a statement unanswered for `silentMs` resets its connection (packets dropped,
 * host gone, so PostgreSQL's own statement_timeout could not answer). The statement fails at once, knex's
 * pool discards the connection (its `error`/`end` handlers mark it), and a reset rather than a close means
 * what was sent and not yet received is dropped with it: a statement still in the network is not run later
 * when it returns. One PostgreSQL had already received may still finish there (a single-statement write
 * commits): that is why the bound is past the statement timeout, which PostgreSQL enforces first whenever
 * it can still answer. An idle connection (inside a transaction too) is ready for a query and left alone.
 */
function endWhenSilent(connection: pg.Client, silentMs: number): void {
  const socket = (connection as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.setTimeout(silentMs, () => {
    if (!(connection as unknown as { readyForQuery: boolean }).readyForQuery) socket.resetAndDestroy();
  });
}

export function openDatabase(target: DatabaseTarget): Database {
  let knex: Knex;
  let kind: Database['kind'];
  let dir: string | undefined;
  let listen: (channel: string, handlers: ListenHandlers) => Promise<StopListening>;
  /** The pool's PostgreSQL connections, for close() to drop the ones that cannot end politely. */
  const opened = new Set<pg.Client>();
  if ('url' in target) {
    kind = 'postgres';
    const { url } = target;
    const statementTimeoutMs = target.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
    listen = (channel, handlers) => listenPostgres(url, channel, handlers);
    knex = knexFactory({
      client: 'pg',
      connection: {
        connectionString: target.url, application_name: 'latchkey', types: pgTypes,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true, keepAliveInitialDelayMillis: 10_000,
        // A start-up parameter, so the bound holds from the connection's first statement at no extra round
        // trip; 0 is sent too, so that a bound set on the role does not cut off the CLI's long statements.
        options: `-c statement_timeout=${statementTimeoutMs}`,
      } as Knex.PgConnectionConfig,
      pool: {
        min: 0, max: target.poolMax ?? 10, acquireTimeoutMillis: ACQUIRE_TIMEOUT_MS,
        afterCreate: (connection: pg.Client, done: (err: Error | null, connection: pg.Client) => void) => {
          if (statementTimeoutMs > 0) endWhenSilent(connection, statementTimeoutMs + DEAD_NETWORK_MARGIN_MS);
          opened.add(connection);
          connection.once('end', () => opened.delete(connection));
          done(null, connection);
        },
      },
      acquireConnectionTimeout: ACQUIRE_TIMEOUT_MS,
    });
  } else {
    kind = 'embedded';
    if ('dir' in target) {
      dir = path.resolve(target.dir);
      mkdirSync(path.dirname(dir), { recursive: true });
    }
    const pglite = new PGlite({
      ...(dir ? { dataDir: dir } : {}),
      startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`],
    });
    knex = knexFactory({
      client: ClientPgLite as unknown as typeof knexFactory.Client,
      dialect: 'postgres',
      connection: { pglite },
    } as Knex.Config);
    listen = (channel, handlers) => listenPglite(pglite, channel, handlers);
  }
  const listening = new Set<StopListening>();
  return {
    knex,
    kind,
    dir,
    async ping() {
      await knex.raw('select 1');
    },
    async migrate(options = {}) {
      const migrationSource = sourceOf(options.migrations ?? migrations);
      const latest = async (on: Knex) => ((await on.migrate.latest({ migrationSource })) as [number, string[]])[1];
      if (!('url' in target)) return latest(knex);
      const { url } = target;
      return underMigrationLock(url, options, () => onMigrationConnection(url, latest));
    },
    async listen(channel, handlers) {
      const stop = await listen(channel, handlers);
      const once = async () => {
        if (listening.delete(once)) await stop();
      };
      listening.add(once);
      return once;
    },
    async close() {
      await Promise.all([...listening].map((stop) => stop()));
      // pg's end() waits for PostgreSQL's side of the close, which never comes over a dead network: after
      // CLOSE_WAIT_MS the sockets are dropped, which ends those connections and lets the pool finish.
      const destroyed = knex.destroy();
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([destroyed.then(() => false), new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), CLOSE_WAIT_MS).unref()))]);
      clearTimeout(timer);
      if (late) {
        for (const connection of opened) (connection as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
        await destroyed;
      }
    },
  };
}

/**
 * The key of the advisory lock migrations run under: the first 8 bytes of SHA-256("latchkey:migrate"), as
 * PostgreSQL's signed bigint. Fixed, so every instance of every version takes the same lock.
 */
export const MIGRATION_LOCK_KEY = createHash('sha256').update('latchkey:migrate').digest().readBigInt64BE(0).toString();

/** How often a start waiting for the migration lock says so. */
const WAITING_REPORT_MS = 10_000;

/**
 * Runs `migrate` while holding a transaction-level advisory lock on a connection of its own: `begin`, wait
 * for the lock, migrate, `commit`, and ending the transaction releases it. knex's migrator has a lock table
 * too, but migrators started at the same moment on a fresh database collide creating it and its tables
 * (one fails, or two lock rows leave it "already locked" for good), and one that finds it locked fails
 * rather than waits: so instances started together take turns here, and each after the first finds
 * nothing left to do (test/store/migrate-lock.test.ts starts 8 at one instant). A lock of the transaction
 * rather than of the session: behind PgBouncer in transaction mode a session's unlock may reach another
 * server connection and leave the lock held for good, while a transaction stays on one server connection
 * and its end always frees the lock (a rollback after a failed migration too, and PostgreSQL if this
 * process dies). While waiting, `onWaiting` hears of it every `waitingReportMs`, so a start that waits
 * for a stuck holder says so rather than hanging silently.
 */
async function underMigrationLock<T>(url: string, options: MigrateOptions, migrate: () => Promise<T>): Promise<T> {
  const lock = new pg.Client({
    connectionString: url, application_name: 'latchkey migrate lock', connectionTimeoutMillis: 10_000,
    keepAlive: true, keepAliveInitialDelayMillis: 10_000,
  });
  // A connection lost meanwhile has released the lock with its transaction; the migration's own error tells.
  lock.on('error', () => {});
  await lock.connect();
  try {
    await lock.query('begin');
    const waitingSince = Date.now();
    const onWaiting = options.onWaiting ?? ((s: number) => process.stderr.write(`latchkey: waiting ${s} s for the migration lock, held by another instance that is migrating this database\n`));
    const report = setInterval(() => onWaiting(Math.round((Date.now() - waitingSince) / 1000)), options.waitingReportMs ?? WAITING_REPORT_MS);
    try {
      await lock.query('select pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    } finally {
      clearInterval(report);
    }
    let result: T;
    try {
      result = await migrate();
    } catch (err) {
      // A failure to roll back must not hide the migration's error: ending the session below releases it too.
      await lock.query('rollback').catch(() => {});
      throw err;
    }
    // Nothing was written in the lock's transaction: a commit that fails (the connection lost) has released it too.
    await lock.query('commit').catch(() => {});
    return result;
  } finally {
    await lock.end().catch(() => {});
  }
}

/**
 * Migrations run on a knex of their own, one connection and no bound on a statement (the pool's bound
 * would cut off a long migration, such as an index built on a large table), destroyed afterwards.
 */
async function onMigrationConnection<T>(url: string, run: (knex: Knex) => Promise<T>): Promise<T> {
  const own = knexFactory({
    client: 'pg',
    connection: {
      connectionString: url, application_name: 'latchkey migrate', types: pgTypes,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true, keepAliveInitialDelayMillis: 10_000,
    } as Knex.PgConnectionConfig,
    pool: { min: 0, max: 1 },
  });
  try {
    return await run(own);
  } finally {
    await own.destroy();
  }
}

/** Migrations are listed in code (migrations/index.ts), so the same list runs from src/ and dist/. */
const sourceOf = (list: readonly Migration[]): Knex.MigrationSource<Migration> => ({
  getMigrations: async () => [...list],
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
});

/**
 * Runs one statement on the hot paths without the query builder: `text` uses `$1`, `$2`, … and `name`
 * names it. On PostgreSQL it is a prepared statement (pg parses it once per connection, then only binds
 * and executes); on the embedded database PGlite runs the same SQL and parameters. The connection comes
 * from knex's pool, so the pool's limits hold, the single PGlite connection is shared in turn, and a
 * repository made on a transaction (`db` is a knex transaction) runs inside it.
 */
export async function prepared<R>(db: Db, name: string, text: string, values: readonly unknown[]): Promise<R[]> {
  const connection = await db.client.acquireConnection();
  try {
    if (db.client instanceof ClientPgLite) {
      return (await timedStatement((connection as PGlite).query<R>(text, values as unknown[]))).rows;
    }
    return (await timedStatement((connection as pg.Client).query<R & pg.QueryResultRow>({ name, text, values: values as unknown[] }))).rows;
  } finally {
    await db.client.releaseConnection(connection);
  }
}

/** Rows `deleteExpired` removes per statement: a large backlog is purged in short statements, each within the statement timeout. */
export const PURGE_BATCH = 5_000;

/**
 * Deletes `table`'s rows whose `expires_at` has passed, PURGE_BATCH at a time (each batch its own
 * statement, picked by row address), until fewer than a batch are left; answers how many went.
 */
export async function deleteExpired(db: Db, table: string, batch = PURGE_BATCH): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await deleted(db.raw('delete from ?? where ctid = any(array(select ctid from ?? where expires_at <= now() limit ?))', [table, table, batch]));
    total += n;
    if (n < batch) return total;
  }
}

/**
 * The number of rows a delete removed. knex answers a number on PostgreSQL, but the PGlite dialect
 * answers the raw result ({ rowCount }) for deletes, so every delete goes through this.
 */
export async function deleted(query: PromiseLike<unknown>): Promise<number> {
  const result = await query;
  if (typeof result === 'number') return result;
  const count = (result as { rowCount?: unknown } | null)?.rowCount;
  return typeof count === 'number' ? count : 0;
}
