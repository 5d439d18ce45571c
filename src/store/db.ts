/**
 * The database: PostgreSQL when a URL is configured, otherwise PGlite (PostgreSQL compiled to WASM)
 * embedded in the process, so both speak one SQL dialect and run the same migrations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrations, type Migration } from '../../migrations/index.ts';
import { listenPglite, listenPostgres, type ListenHandlers, type StopListening } from './listen.ts';

export type Db = Knex;

export interface Database {
  readonly knex: Knex;
  readonly kind: 'postgres' | 'embedded';
  /** For the embedded database: its directory, or undefined when it lives in memory. */
  readonly dir?: string;
  ping(): Promise<void>;
  migrate(): Promise<string[]>;
  /** Hears notifications on `channel` from every process on this database (listen.ts); close() stops it too. */
  listen(channel: string, handlers: ListenHandlers): Promise<StopListening>;
  close(): Promise<void>;
}

export type DatabaseTarget = { url: string; poolMax?: number } | { dir: string } | { memory: true };

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

export function openDatabase(target: DatabaseTarget): Database {
  let knex: Knex;
  let kind: Database['kind'];
  let dir: string | undefined;
  let listen: (channel: string, handlers: ListenHandlers) => Promise<StopListening>;
  if ('url' in target) {
    kind = 'postgres';
    const { url } = target;
    listen = (channel, handlers) => listenPostgres(url, channel, handlers);
    knex = knexFactory({
      client: 'pg',
      connection: { connectionString: target.url, application_name: 'latchkey', types: pgTypes } as Knex.PgConnectionConfig,
      pool: { min: 0, max: target.poolMax ?? 10, acquireTimeoutMillis: 10_000 },
      acquireConnectionTimeout: 10_000,
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
    async migrate() {
      const [, done] = (await knex.migrate.latest({ migrationSource: source })) as [number, string[]];
      return done;
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
      await knex.destroy();
    },
  };
}

/** Migrations are listed in code (migrations/index.ts), so the same list runs from src/ and dist/. */
const source: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};

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
      return (await (connection as PGlite).query<R>(text, values as unknown[])).rows;
    }
    return (await (connection as pg.Client).query<R & pg.QueryResultRow>({ name, text, values: values as unknown[] })).rows;
  } finally {
    await db.client.releaseConnection(connection);
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
