/**
 * The audit log's store and hash chain, on the run's database (PostgreSQL when LATCHKEY_TEST_DATABASE_URL is
 * set, where parallel appends come from two pools as from two instances; otherwise the embedded database):
 * appends that race still make one chain, verification finds an edited, deleted or reordered row, the
 * table refuses changes, and the retention purge keeps what is left verifiable.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Knex } from 'knex';
import { GENESIS_HASH, rowHash, type AuditEntry } from '../../src/audit/chain.ts';
import { verifyChain } from '../../src/audit/verify.ts';
import { auditLogRepository, type AuditLogRepository } from '../../src/store/audit-log.ts';
import { openDatabase, type Database } from '../../src/store/db.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const DAY = 86400_000;

const entry = (n: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId: `req-${n}`,
  action: 'users.add', targetType: 'user', targetId: `user-${n}`, result: 'ok', reason: null,
  before: null, after: { n, name: `User ${n}`, roles: ['admin'] },
  ...over,
});

interface Log {
  db: TestDatabase;
  knex: Knex;
  audit: AuditLogRepository;
  drop(): Promise<void>;
}

/** A fresh database with `rows` appended (the first `old` of them `oldDays` ago). */
async function freshLog(rows: number, { old = 0, oldDays = 400 } = {}): Promise<Log> {
  const db = await createTestDatabase();
  await db.database.migrate();
  const knex = db.database.knex;
  let clock = () => new Date(Date.now() - oldDays * DAY);
  const audit = auditLogRepository(knex, () => clock());
  for (let i = 1; i <= rows; i++) {
    if (i > old) clock = () => new Date();
    await audit.append(entry(i));
  }
  return { db, knex, audit: auditLogRepository(knex), drop: async () => { await db.database.close(); await db.drop(); } };
}

/** Changes the table around its append-only trigger, as someone with the database's password could. */
async function tamper(knex: Knex, change: (trx: Knex.Transaction) => Promise<unknown>): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx.raw('alter table audit_log disable trigger audit_log_append_only');
    await change(trx);
    await trx.raw('alter table audit_log enable trigger audit_log_append_only');
  });
}

describe('the audit log store', () => {
  describe('appends', () => {
    let log: Log;
    let second: Database | undefined;
    before(async () => {
      log = await freshLog(0);
    });
    after(async () => {
      await second?.close();
      await log.drop();
    });

    it('20 parallel appends (from two instances on PostgreSQL) make one chain: numbered without gaps, no previous hash twice', async () => {
      const appenders = [log.audit];
      if (log.db.url) {
        second = openDatabase({ url: log.db.url, poolMax: 10 });
        appenders.push(auditLogRepository(second.knex));
      }
      const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => appenders[i % appenders.length]!.append(entry(i + 1))));
      assert.deepEqual(rows.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
      const stored = await log.knex('audit_log').orderBy('seq').select('seq', 'prev_hash', 'hash');
      assert.equal(stored.length, 20);
      assert.equal(new Set(stored.map((r) => r.prev_hash)).size, 20, 'no two rows share a previous hash');
      assert.equal(stored[0].prev_hash, GENESIS_HASH);
      for (let i = 1; i < stored.length; i++) assert.equal(stored[i].prev_hash, stored[i - 1].hash, `row ${i + 1} links to row ${i}`);
      const chain = await log.audit.chain();
      assert.deepEqual([chain.headSeq, chain.headHash], [20, stored[19].hash]);
      assert.deepEqual(await verifyChain(log.audit), { ok: true, checked: 20, anchorSeq: 0, headSeq: 20 });
    });

    it('hashes the documented canonical form: SHA-256 over the JCS array of the fields and the previous hash', async () => {
      const row = (await log.audit.page({}, { order: 'asc', limit: 1 }))[0]!;
      const canonical = `["latchkey.audit.v1",${row.seq},"${row.time.toISOString()}","cli",null,null,null,null,"${row.requestId}","users.add","user","${row.targetId}","ok",null,null,`
        + `{"n":${(row.after as { n: number }).n},"name":"User ${(row.after as { n: number }).n}","roles":["admin"]},"${GENESIS_HASH}"]`;
      assert.equal(row.hash, createHash('sha256').update(canonical).digest('hex'));
    });

    it('reads pages by keyset, both ways, with filters', async () => {
      const first = await log.audit.page({}, { order: 'asc', limit: 8 });
      const next = await log.audit.page({}, { order: 'asc', limit: 8, cursor: first.at(-1)!.seq });
      assert.deepEqual([...first, ...next].map((r) => r.seq), Array.from({ length: 16 }, (_, i) => i + 1));
      const newest = await log.audit.page({}, { order: 'desc', limit: 3, cursor: 10 });
      assert.deepEqual(newest.map((r) => r.seq), [9, 8, 7]);
      const one = await log.audit.page({ target: { type: 'user', id: 'user-7' } }, { order: 'asc', limit: 10 });
      assert.deepEqual(one.map((r) => r.targetId), ['user-7']);
      assert.equal((await log.audit.page({ since: new Date(Date.now() + DAY) }, { order: 'asc', limit: 10 })).length, 0);
      const all = [];
      for await (const r of log.audit.scan({ actor: { type: 'cli' } }, 6)) all.push(r.seq);
      assert.equal(all.length, 20);
    });

    it('refuses UPDATE, DELETE and TRUNCATE: the table is append-only; the chain\'s head never goes back', async () => {
      await assert.rejects(log.knex('audit_log').where({ seq: 3 }).update({ reason: 'changed' }), /append-only \(UPDATE refused\)/);
      await assert.rejects(log.knex('audit_log').where({ seq: 3 }).delete(), /append-only \(DELETE refused\)/);
      await assert.rejects(log.knex.raw('truncate audit_log'), /append-only \(TRUNCATE refused\)/);
      await assert.rejects(log.knex('audit_chain').update({ head_seq: 2 }), /only moves forward/);
      await assert.rejects(log.knex('audit_chain').delete(), /only moves forward/);
      assert.equal((await verifyChain(log.audit)).ok, true);
    });
  });

  describe('verification reports the first broken row', () => {
    const logs: Log[] = [];
    const log = async (rows: number) => {
      const l = await freshLog(rows);
      logs.push(l);
      return l;
    };
    after(async () => {
      for (const l of logs) await l.drop();
    });

    it('an edit made in SQL, of a field or of before/after: the edited row', async () => {
      const l = await log(6);
      assert.deepEqual(await verifyChain(l.audit), { ok: true, checked: 6, anchorSeq: 0, headSeq: 6 });
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 4 }).update({ result: 'denied' }));
      assert.deepEqual(await verifyChain(l.audit, 2), {
        ok: false, checked: 3, anchorSeq: 0, headSeq: 6, seq: 4, problem: 'hash', message: 'row 4 was altered: its hash does not match its content',
      });
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 4 }).update({ result: 'ok' }));
      assert.equal((await verifyChain(l.audit)).ok, true, 'undone, it verifies again');
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 2 }).update({ after: JSON.stringify({ n: 2, name: 'User 2', roles: [] }) }));
      const report = await verifyChain(l.audit);
      assert.equal(report.ok, false);
      assert.deepEqual(!report.ok && [report.seq, report.problem], [2, 'hash']);
    });

    it('an edit whose hash was recomputed: the next row, which no longer links to it', async () => {
      const l = await log(5);
      const [row] = await l.audit.page({ target: { id: 'user-3' } }, { order: 'asc', limit: 1 });
      const forged = { ...row!, actorType: 'user' as const, actorId: 'someone-else' };
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 3 }).update({ actor_type: 'user', actor_id: 'someone-else', hash: rowHash(forged) }));
      const report = await verifyChain(l.audit);
      assert.deepEqual(!report.ok && [report.seq, report.problem, report.message], [4, 'link', 'row 4 does not link to row 3']);
    });

    it('a deleted row, in the middle or the last one', async () => {
      const l = await log(6);
      // Even with the purge's own switch: the chain shows the gap.
      await l.knex.transaction(async (trx) => {
        await trx.raw(`select set_config('latchkey.audit_purge', 'on', true)`);
        await trx('audit_log').where({ seq: 3 }).delete();
      });
      const middle = await verifyChain(l.audit);
      assert.deepEqual(!middle.ok && [middle.seq, middle.problem, middle.message], [3, 'missing', 'row 3 is missing (deleted)']);

      const tail = await log(6);
      await tamper(tail.knex, (trx) => trx('audit_log').where('seq', '>=', 5).delete());
      const end = await verifyChain(tail.audit);
      assert.deepEqual(!end.ok && [end.seq, end.problem, end.message], [5, 'missing', 'rows 5 to 6 are missing at the end (deleted)']);
    });

    it('reordered rows or hashes: the first row out of place', async () => {
      const l = await log(6);
      // Rows 3 and 4 trade places (their numbers), each keeping its own hashes.
      await tamper(l.knex, async (trx) => {
        await trx('audit_log').where({ seq: 3 }).update({ seq: -1 });
        await trx('audit_log').where({ seq: 4 }).update({ seq: 3 });
        await trx('audit_log').where({ seq: -1 }).update({ seq: 4 });
      });
      const swapped = await verifyChain(l.audit);
      assert.deepEqual(!swapped.ok && [swapped.seq, swapped.problem], [3, 'link']);

      const h = await log(6);
      // Rows 4 and 5 trade their hashes.
      const [r4, r5] = await h.knex('audit_log').whereIn('seq', [4, 5]).orderBy('seq').select('hash');
      await tamper(h.knex, async (trx) => {
        await trx('audit_log').where({ seq: 4 }).update({ hash: r5.hash });
        await trx('audit_log').where({ seq: 5 }).update({ hash: r4.hash });
      });
      const hashes = await verifyChain(h.audit);
      assert.deepEqual(!hashes.ok && [hashes.seq, hashes.problem], [4, 'hash']);
    });
  });

  describe('retention', () => {
    const logs: Log[] = [];
    after(async () => {
      for (const l of logs) await l.drop();
    });

    it('purges the rows past the retention, anchors the chain on the last one removed, and what is left still verifies', async () => {
      const l = await freshLog(8, { old: 5 });
      logs.push(l);
      assert.equal(await l.audit.purge(365), 5);
      assert.deepEqual((await l.knex('audit_log').orderBy('seq').pluck('seq')).map(Number), [6, 7, 8]);
      const chain = await l.audit.chain();
      assert.equal(chain.anchorSeq, 5);
      assert.equal(chain.anchorHash, (await l.audit.page({}, { order: 'asc', limit: 1 }))[0]!.prevHash, 'the anchor is the hash row 6 links to');
      assert.deepEqual(await verifyChain(l.audit), { ok: true, checked: 3, anchorSeq: 5, headSeq: 8 });
      assert.equal(await l.audit.purge(365), 0, 'nothing more to purge');
      await l.audit.append(entry(9));
      assert.deepEqual(await verifyChain(l.audit), { ok: true, checked: 4, anchorSeq: 5, headSeq: 9 });

      // From the anchor on, tampering still shows: the first row kept no longer links to it.
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 6 }).update({ prev_hash: GENESIS_HASH }));
      const report = await verifyChain(l.audit);
      assert.deepEqual(!report.ok && [report.seq, report.problem, report.message], [6, 'link', 'row 6 does not link to the anchor (row 5)']);
    });

    it('keeps rows younger than the retention, and never purges past a broken link (it stays reported)', async () => {
      const l = await freshLog(6, { old: 4, oldDays: 30 });
      logs.push(l);
      assert.equal(await l.audit.purge(365), 0, 'a month is within a year');
      await tamper(l.knex, (trx) => trx('audit_log').where({ seq: 3 }).update({ action: 'keys.rotate' }));
      assert.equal(await l.audit.purge(7), 2, 'rows 1 and 2 go; row 3 is altered and stays');
      const report = await verifyChain(l.audit);
      assert.deepEqual(!report.ok && [report.anchorSeq, report.seq, report.problem], [2, 3, 'hash']);
    });
  });
});

