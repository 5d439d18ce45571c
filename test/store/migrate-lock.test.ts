/**
 * Migrations under PostgreSQL's advisory lock (store/db.ts): instances started together on one fresh
 * database take turns, so every migration runs exactly once and every instance starts; a migration that
 * fails releases the lock, so the next start is not left waiting. The lock is a transaction's (what
 * PgBouncer's transaction mode keeps on one server connection), a start waiting for it says so, and
 * migrations run on a connection of their own, without the pool's bound on a statement.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { migrations, type Migration } from '../../migrations/index.ts';
import { MIGRATION_LOCK_KEY, openDatabase } from '../../src/store/db.ts';
import { createTestDatabaseUrl, TEST_DATABASE_URL } from '../helpers/db.ts';
import { freshGet, startServerProcess, type ServerProcess } from '../cluster/workers-process.ts';

async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

async function query<R extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(sql, values)).rows;
  } finally {
    await c.end();
  }
}

/** Advisory locks on migration's key held in this database right now. */
const migrationLocksHeld = (url: string) => query<{ n: number }>(url,
  `select count(*)::int as n from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())
     and ((classid::bigint << 32) | objid::bigint) = $1::bigint`, [MIGRATION_LOCK_KEY]).then((r) => r[0]!.n);

describe('migrations under an advisory lock (PostgreSQL)', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
  const drops: (() => Promise<void>)[] = [];
  const servers: ServerProcess[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const drop of drops) await drop();
  });

  // Processes reach their migration at different moments (each loads its code first): this shows that
  // servers started together all start, while the lock itself is proven by the 8 migrations at one instant below.
  it('3 server processes started at once on one empty database all become ready, and each migration ran exactly once', async () => {
    const { url, drop } = await createTestDatabaseUrl();
    drops.push(drop);
    const started = await Promise.allSettled([1, 2, 3].map(() => startServerProcess({ LATCHKEY_DATABASE_URL: url, LATCHKEY_WORKERS: '1', LATCHKEY_LOG_LEVEL: 'warn' })));
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.flatMap((s) => (s.status === 'rejected' ? [(s.reason as Error).message] : []));
    assert.deepEqual(failed, [], 'every instance started');
    for (const server of servers) {
      assert.equal((await freshGet(`${server.url}/readyz`)).status, 200, `${server.url} is ready`);
      assert.doesNotMatch(server.output.stderr, /already locked|duplicate key|cannot start/i);
    }
    const rows = await query<{ name: string; batch: number }>(url, 'select name, batch from knex_migrations order by id');
    const names = rows.map((r) => r.name);
    assert.equal(new Set(names).size, names.length, `no migration twice: ${names.join(', ')}`);
    assert.equal(names.length, migrations.length, 'as many rows as migrations');
    assert.deepEqual(names, migrations.map((m) => m.name), 'each one, in order');
    assert.deepEqual([...new Set(rows.map((r) => r.batch))], [1], 'all in one batch: the first instance ran them, the others found nothing to do');
    assert.equal(await migrationLocksHeld(url), 0, 'no instance still holds the lock');
  });

  it('8 databases migrating at the same moment in one process: every one succeeds, and each migration ran exactly once', async () => {
    // The processes above reach their migration a few hundred milliseconds apart; here the start is the
    // same instant, where knex alone has each create its tables and lock row (and all but one fail, or
    // leave two lock rows that lock the table for good).
    const { url, drop } = await createTestDatabaseUrl();
    drops.push(drop);
    const dbs = Array.from({ length: 8 }, () => openDatabase({ url, poolMax: 2 }));
    try {
      const results = await Promise.allSettled(dbs.map((db) => db.migrate()));
      assert.deepEqual(results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : [])), [], 'none failed');
      const applied = results.map((r) => (r as PromiseFulfilledResult<string[]>).value.length).sort((a, b) => b - a);
      assert.deepEqual(applied, [migrations.length, 0, 0, 0, 0, 0, 0, 0], 'one ran them all, the others found nothing to do');
      const names = (await query<{ name: string }>(url, 'select name from knex_migrations order by id')).map((r) => r.name);
      assert.deepEqual(names, migrations.map((m) => m.name));
      assert.deepEqual(await query(url, 'select is_locked from knex_migrations_lock'), [{ is_locked: 0 }], 'one lock row of knex\'s, free');
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  });

  it('the lock is a transaction\'s, held by its own connection while the migrations run on another, which has no bound on a statement', async () => {
    const { url, drop } = await createTestDatabaseUrl();
    drops.push(drop);
    const seen: { holders: { state: string; application_name: string; pid: number }[]; migrating: { application_name: string; pid: number; timeout: string } } [] = [];
    const probe: Migration = {
      name: '900_probe',
      async up(knex) {
        const holders = (await knex.raw(`select a.state, a.application_name, a.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted and ((l.classid::bigint << 32) | l.objid::bigint) = ?::bigint`, [MIGRATION_LOCK_KEY])).rows;
        const migrating = (await knex.raw(`select current_setting('application_name') as application_name, pg_backend_pid() as pid, current_setting('statement_timeout') as timeout`)).rows[0];
        seen.push({ holders, migrating });
      },
      async down() {},
    };
    // Longer than the pool's bound on a statement (DEFAULT_STATEMENT_TIMEOUT_MS, 5 s): an index built on a large table.
    const slow: Migration = { name: '901_slow', up: async (knex) => void (await knex.raw('select pg_sleep(6)')), down: async () => {} };
    const db = openDatabase({ url });
    try {
      const started = Date.now();
      assert.deepEqual(await within(60_000, 'the migrations', db.migrate({ migrations: [probe, slow] })), ['900_probe', '901_slow'], 'the slow one succeeds');
      assert.ok(Date.now() - started >= 6_000);
      assert.equal(seen.length, 1);
      const [{ holders, migrating }] = seen as [typeof seen[number]];
      assert.equal(holders.length, 1, 'one holder of the lock');
      assert.equal(holders[0]!.application_name, 'latchkey migrate lock');
      assert.equal(holders[0]!.state, 'idle in transaction', 'the lock is held inside a transaction (a session lock would be held by an idle session)');
      assert.notEqual(holders[0]!.pid, migrating.pid, 'by a connection other than the migrating one');
      assert.equal(migrating.application_name, 'latchkey migrate', 'the migrations run on a connection of their own, not the pool\'s');
      assert.equal(migrating.timeout, '0', 'with no bound on a statement');
      assert.equal(await migrationLocksHeld(url), 0, 'the commit released the lock');
    } finally {
      await db.close();
    }
    assert.deepEqual(await query(url, `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name like 'latchkey migrate%'`), [{ n: 0 }], 'both connections closed');
  });

  it('a migration waits while another holds the lock, rather than failing, says so while it waits, and runs once it is released', async () => {
    const { url, drop } = await createTestDatabaseUrl();
    drops.push(drop);
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('select pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    const db = openDatabase({ url, poolMax: 1 });
    try {
      let done = false;
      const waited: number[] = [];
      const migrating = db.migrate({ onWaiting: (s) => waited.push(s), waitingReportMs: 400 }).finally(() => (done = true));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(done, false, 'waits for the holder');
      assert.ok(waited.length >= 2, `says so while it waits: ${waited.join(', ')}`);
      const reported = waited.length;
      assert.deepEqual(await query(url, `select 1 from information_schema.tables where table_name = 'knex_migrations'`), [], 'and touched nothing meanwhile');
      await holder.query('select pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
      const applied = await within(30_000, 'the migration after the release', migrating);
      assert.equal(applied.length, migrations.length, 'then ran every migration (with a pool of one connection)');
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(waited.length <= reported + 1, 'and stops saying so once it has the lock');
    } finally {
      await holder.end();
      await db.close();
    }
  });

  it('a migration that fails releases the lock: the next start, in the same process or another, is not stuck', async () => {
    const { url, drop } = await createTestDatabaseUrl();
    drops.push(drop);
    // The first migration creates `users`: a table of that name already there makes it fail.
    await query(url, 'create table users (broken int)');
    const first = openDatabase({ url });
    try {
      await assert.rejects(first.migrate(), /already exists/);
      assert.equal(await migrationLocksHeld(url), 0, 'the failed migration released the lock (its database is still open)');
      await query(url, 'drop table users');
      const second = openDatabase({ url });
      try {
        const applied = await within(30_000, 'the second migration', second.migrate());
        assert.equal(applied.length, migrations.length);
      } finally {
        await second.close();
      }
      const server = await within(60_000, 'a server start', startServerProcess({ LATCHKEY_DATABASE_URL: url, LATCHKEY_LOG_LEVEL: 'warn' }));
      servers.push(server);
      assert.equal((await freshGet(`${server.url}/readyz`)).status, 200);
    } finally {
      await first.close();
    }
  });
});
