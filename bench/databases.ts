/**
 * The databases a run uses, each as the LATCHKEY_* variables that select it: the embedded database in a
 * temporary data directory, and a throw-away database on a given PostgreSQL server (dropped afterwards).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { throwAwayDatabase } from '../test/helpers/db.ts';

export interface BenchDatabase {
  label: 'embedded' | 'postgres';
  env: Record<string, string>;
  /** Where the server's log and any CPU profile go. */
  workDir: string;
  /** The operating-system processes doing this database's work outside the server (PostgreSQL backends). */
  backendPids(): Promise<number[]>;
  /** Transactions committed so far (each autocommit statement is one); undefined when not known. */
  transactions(): Promise<number | undefined>;
  drop(): Promise<void>;
}

export async function embeddedDatabase(): Promise<BenchDatabase> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-bench-'));
  return {
    label: 'embedded',
    env: { LATCHKEY_DATA_DIR: path.join(workDir, 'data') },
    workDir,
    backendPids: async () => [],
    transactions: async () => undefined,
    drop: () => rm(workDir, { recursive: true, force: true }),
  };
}

export async function postgresDatabase(serverUrl: string): Promise<BenchDatabase> {
  const { name, url, drop } = await throwAwayDatabase(serverUrl, 'latchkey_bench');
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-bench-'));
  const watcher = new pg.Client({ connectionString: serverUrl });
  await watcher.connect();
  return {
    label: 'postgres',
    env: { LATCHKEY_DATABASE_URL: url, LATCHKEY_DATA_DIR: path.join(workDir, 'data') },
    workDir,
    async backendPids() {
      const { rows } = await watcher.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name]);
      return rows.map((r) => r.pid);
    },
    async transactions() {
      // Statistics reach pg_stat_database when a backend is idle or at least once a second: read at a window's
      // edges, the count is off by up to a second's worth at each end.
      await watcher.query('select pg_stat_clear_snapshot()');
      const { rows } = await watcher.query<{ n: string }>('select xact_commit + xact_rollback as n from pg_stat_database where datname = $1', [name]);
      return Number(rows[0]?.n ?? NaN);
    },
    async drop() {
      await watcher.end();
      await drop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}
