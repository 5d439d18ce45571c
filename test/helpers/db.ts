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

export async function createTestDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = new URL(TEST_DATABASE_URL!);
  const name = `latchkey_test_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`create database ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists ${name} with (force)`) };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!TEST_DATABASE_URL) {
    return { database: openDatabase({ memory: true }), url: undefined, drop: async () => {} };
  }
  const { url, drop } = await createTestDatabaseUrl();
  return { database: openDatabase({ url, poolMax: 10 }), url, drop };
}
