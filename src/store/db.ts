/**
 * The database: PostgreSQL when a URL is configured, otherwise PGlite (PostgreSQL compiled to WASM)
 * embedded in the process, so both speak one SQL dialect and run the same migrations.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrations, type Migration } from '../../migrations/index.ts';

export type Db = Knex;

export interface Database {
  readonly knex: Knex;
  readonly kind: 'postgres' | 'embedded';
  /** For the embedded database: its directory, or undefined when it lives in memory. */
  readonly dir?: string;
  ping(): Promise<void>;
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export type DatabaseTarget = { url: string; poolMax?: number } | { dir: string } | { memory: true };

// int8 (counts, bigserial ids) as numbers: the values Latchkey counts stay far below 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export function openDatabase(target: DatabaseTarget): Database {
  let knex: Knex;
  let kind: Database['kind'];
  let dir: string | undefined;
  if ('url' in target) {
    kind = 'postgres';
    knex = knexFactory({
      client: 'pg',
      connection: { connectionString: target.url, application_name: 'latchkey' },
      pool: { min: 0, max: target.poolMax ?? 10, acquireTimeoutMillis: 10_000 },
      acquireConnectionTimeout: 10_000,
    });
  } else {
    kind = 'embedded';
    if ('dir' in target) {
      dir = path.resolve(target.dir);
      mkdirSync(path.dirname(dir), { recursive: true });
    }
    knex = knexFactory({
      client: ClientPgLite as unknown as typeof knexFactory.Client,
      dialect: 'postgres',
      connection: dir ? { filename: dir } : {},
    } as Knex.Config);
  }
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
    async close() {
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
 * The number of rows a delete removed. knex answers a number on PostgreSQL, but the PGlite dialect
 * answers the raw result ({ rowCount }) for deletes, so every delete goes through this.
 */
export async function deleted(query: PromiseLike<unknown>): Promise<number> {
  const result = await query;
  if (typeof result === 'number') return result;
  const count = (result as { rowCount?: unknown } | null)?.rowCount;
  return typeof count === 'number' ? count : 0;
}
