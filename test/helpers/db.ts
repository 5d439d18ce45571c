/**
 * A fresh database per suite: PostgreSQL when LATCHKEY_TEST_DATABASE_URL is set (a throw-away database is
 * created on that server and dropped afterwards), otherwise the embedded database in memory.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/db.ts';

export const TEST_DATABASE_URL = process.env.LATCHKEY_TEST_DATABASE_URL;

export interface TestDatabase {
  database: Database;
  /** The connection string other processes (a second instance, the CLI) can use; undefined when embedded. */
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * A throw-away database on the PostgreSQL server at `serverUrl`, named `<prefix>_<random>`: its URL, and
 * `drop`, which ends its connections and drops it. The tests and the benchmarks both make theirs here.
 */
export async function throwAwayDatabase(serverUrl: string, prefix: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
}

export async function createTestDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  return throwAwayDatabase(TEST_DATABASE_URL!, 'latchkey_test');
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!TEST_DATABASE_URL) {
    return { database: openDatabase({ memory: true }), url: undefined, drop: async () => {} };
  }
  const { url, drop } = await createTestDatabaseUrl();
  return { database: openDatabase({ url, poolMax: 10 }), url, drop };
}
