import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import knexFactory, { type Knex } from 'knex';
import { databaseUnavailable } from '../../src/http/errors.ts';
import { countersRepository } from '../../src/store/counters.ts';
import { deleteExpired, openDatabase, type Database } from '../../src/store/db.ts';
import { createTestDatabase, TEST_DATABASE_URL, throwAwayDatabase, type TestDatabase } from '../helpers/db.ts';

/**
 * The bounds on the database's waits: which errors mean "the database is away" (answered 503) and which are bugs (500), on the errors pg and
 * knex really throw: a fake PostgreSQL that lets a client in and then hangs up or never answers, and a real
 * PostgreSQL cancelling a statement past its bound.
 */

/** Lets pg in (authentication ok, ready), then does `onQuery` with the socket when the first statement comes. */
async function fakePostgres(onQuery: (socket: net.Socket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let started = false;
    socket.on('error', () => {});
    socket.on('data', () => {
      if (started) return onQuery(socket);
      started = true;
      const ok = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]); // AuthenticationOk
      const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]); // ReadyForQuery, idle
      socket.write(Buffer.concat([ok, ready]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgres://latchkey@127.0.0.1:${port}/latchkey`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The error a statement fails with. */
async function failure(run: () => Promise<unknown>): Promise<Error> {
  try {
    await run();
  } catch (err) {
    return err as Error;
  }
  assert.fail('the statement succeeded');
}

describe('databaseUnavailable', () => {
  it('a connection that ends during a statement, as knex reports it (the statement first): the database is away', async () => {
    const fake = await fakePostgres((socket) => socket.end());
    const knex: Knex = knexFactory({ client: 'pg', version: '16', connection: fake.url, pool: { min: 0, max: 1 } });
    try {
      const err = await failure(() => knex.raw('select 1 as one'));
      assert.match(err.message, /^select 1 as one - Connection terminated unexpectedly$/);
      assert.equal(databaseUnavailable(err), true);
    } finally {
      await knex.destroy();
      await fake.close();
    }
  });

  it('no connection to be had in time, and a connection that never answers its start: the database is away', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const url = `postgres://latchkey@127.0.0.1:${(silent.address() as net.AddressInfo).port}/latchkey`;
    const knex: Knex = knexFactory({ client: 'pg', version: '16', log: { error() {}, warn() {} }, connection: { connectionString: url, connectionTimeoutMillis: 300 } as Knex.PgConnectionConfig, acquireConnectionTimeout: 500, pool: { min: 0, max: 1 } });
    try {
      const err = await failure(() => knex.raw('select 1'));
      assert.ok(err.name === 'KnexTimeoutError' || /timeout/i.test(err.message), `${err.name}: ${err.message}`);
      assert.equal(databaseUnavailable(err), true);
    } finally {
      await knex.destroy();
      silent.close();
    }
  });

  it('a bug is not the database being away, even when its statement mentions a connection', () => {
    assert.equal(databaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'rows')")), false);
    assert.equal(databaseUnavailable(Object.assign(new Error('insert into users … - duplicate key value violates unique constraint "users_email_key"'), { code: '23505' })), false);
    assert.equal(databaseUnavailable(Object.assign(new Error("select 'Connection terminated' - syntax error at or near \"x\""), { code: '42601' })), false);
    assert.equal(databaseUnavailable(undefined), false);
  });
});

describe('the statement bound on PostgreSQL', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
  let db: { url: string; drop(): Promise<void> };
  let unbounded: Database;
  before(async () => {
    db = await throwAwayDatabase(TEST_DATABASE_URL!, 'latchkey_test');
    unbounded = openDatabase({ url: db.url, poolMax: 2, statementTimeoutMs: 0 });
    await unbounded.knex.raw('create table slow_writes (v int)');
  });
  after(async () => {
    await unbounded?.close();
    await db?.drop();
  });

  it('PostgreSQL cancels a statement past the bound, rolls its write back, and that is the database being away (503)', async () => {
    const bounded = openDatabase({ url: db.url, poolMax: 1, statementTimeoutMs: 500 });
    try {
      const started = performance.now();
      const err = await failure(() => bounded.knex.raw('insert into slow_writes (v) select 1 from pg_sleep(2)'));
      assert.equal((err as { code?: string }).code, '57014', err.message);
      assert.ok(performance.now() - started < 1_800, `cancelled by the bound (${Math.round(performance.now() - started)} ms)`);
      assert.equal(databaseUnavailable(err), true);
      const { rows } = await unbounded.knex.raw<{ rows: { n: number }[] }>('select count(*)::int as n from slow_writes');
      assert.equal(rows[0]!.n, 0, 'the cancelled write left nothing');
      // The connection is fine afterwards.
      assert.deepEqual((await bounded.knex.raw<{ rows: unknown[] }>('select 1 as one')).rows, [{ one: 1 }]);
    } finally {
      await bounded.close();
    }
  });

  it('the default bound is 5 s, and 0 (the CLI) sends no bound, so a bound set on the role does not apply either', async () => {
    const byDefault = openDatabase({ url: db.url, poolMax: 1 });
    try {
      assert.equal((await byDefault.knex.raw<{ rows: { statement_timeout: string }[] }>('show statement_timeout')).rows[0]!.statement_timeout, '5s');
    } finally {
      await byDefault.close();
    }
    const role = `latchkey_bound_${Math.random().toString(36).slice(2, 8)}`;
    await unbounded.knex.raw(`create role ${role} login`);
    try {
      await unbounded.knex.raw(`alter role ${role} set statement_timeout = '1s'`);
      const url = new URL(db.url);
      url.username = role;
      const cli = openDatabase({ url: url.toString(), poolMax: 1, statementTimeoutMs: 0 });
      try {
        assert.equal((await cli.knex.raw<{ rows: { statement_timeout: string }[] }>('show statement_timeout')).rows[0]!.statement_timeout, '0');
        await cli.knex.raw('select pg_sleep(1.5)');
      } finally {
        await cli.close();
      }
    } finally {
      await unbounded.knex.raw(`drop role ${role}`);
    }
  });
});

describe('purging expired rows in batches', () => {
  let test: TestDatabase;
  before(async () => {
    test = await createTestDatabase();
    await test.database.migrate();
  });
  after(async () => {
    await test?.database.close();
    await test?.drop();
  });

  it('deletes every expired row, a batch per statement, and no live one', async () => {
    const { knex } = test.database;
    const rows = (prefix: string, n: number, expires: string) =>
      Array.from({ length: n }, (_, i) => ({ key: `${prefix}:${i}`, count: 1, expires_at: knex.raw(`now() + interval '${expires}'`) }));
    await knex('counters').insert([...rows('gone', 12, '-1 hour'), ...rows('live', 3, '1 hour')]);
    const statements: string[] = [];
    const seen = (q: { sql: string }) => statements.push(q.sql);
    knex.on('query', seen);
    try {
      assert.equal(await deleteExpired(knex, 'counters', 5), 12);
    } finally {
      knex.off('query', seen);
    }
    assert.equal(statements.filter((sql) => sql.startsWith('delete')).length, 3, 'batches of 5, 5 and 2');
    assert.deepEqual((await knex('counters').orderBy('key').pluck('key')), ['live:0', 'live:1', 'live:2']);
    // The repository's purge: the rest (none now, then one more expired).
    await knex('counters').insert(rows('late', 1, '-1 second'));
    assert.equal(await countersRepository(knex).purge(), 1);
    assert.equal(await knex('counters').count({ n: '*' }).first().then((r) => Number(r!.n)), 3);
  });
});
