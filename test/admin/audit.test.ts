/**
 * The audit log as the operations use it: every CLI command leaves a row with the CLI as its actor, a
 * refusal a `denied` row, a failure an `error` row; secrets never reach it; actions on a user reach that
 * user's activity and outlive the user; the export filters and streams, in CSV and NDJSON; the purge
 * behind the maintenance job keeps the log verifiable.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REDACTED, redact } from '../../src/audit/redact.ts';
import { csvField } from '../../src/audit/export.ts';
import type { Actor } from '../../src/admin/operations/actor.ts';
import { addUser } from '../../src/admin/operations/users.ts';
import { runCommand, type CommandResult } from '../../src/admin/commands.ts';
import { adminSocketPath, callAdminSocket, serveAdminSocket } from '../../src/admin/socket.ts';
import { loadConfig } from '../../src/config.ts';
import { createRenderer } from '../../src/http/render.ts';
import { purgeExpired } from '../../src/maintenance.ts';
import { createServices, type Services } from '../../src/services.ts';
import { auditLogRepository } from '../../src/store/audit-log.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Row {
  seq: number; actor_type: string; actor_id: string | null; actor_acr: string | null; ip: string | null; user_agent: string | null;
  request_id: string | null; action: string; target_type: string | null; target_id: string | null; result: string;
  reason: string | null; before: unknown; after: unknown; prev_hash: string; hash: string; time: string;
}

/** RFC 4180 records: quoted fields with doubled quotes, CRLF between records. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"', i++);
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (record.push(field), (field = ''));
    else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      (record = []), (field = ''), i++;
    } else field += c;
  }
  assert.equal(field + record.join(''), '', 'the text ends with CRLF');
  return records;
}

describe('the audit log of administrative operations', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  const cli = (argv: string[], stdin = '', stdout?: (text: string) => Promise<void>): Promise<CommandResult> =>
    runCommand(argv, services(), { stdin: async () => stdin, ...(stdout ? { stdout } : {}) });
  const head = async () => (await services().store.audit.chain()).headSeq;
  const rowsAfter = async (seq: number): Promise<Row[]> => (await knex()('audit_log').where('seq', '>', seq).orderBy('seq')).map((r) => ({ ...r, seq: Number(r.seq) }));
  const ndjson = (text: string): Row[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Row);
  const ok = (r: CommandResult) => {
    assert.equal(r.code, 0, r.stderr);
    return r;
  };

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('every CLI command leaves one row, with the CLI as actor and the run\'s own request id', async () => {
    const commands: [string[], string, string?][] = [
      [['migrate'], 'database.migrate'],
      [['users', 'add', '--email', 'audit-admin@example.com', '--admin', '--password-stdin'], 'users.add', 'a long audited password'],
      [['users', 'list'], 'users.list'],
      [['clients', 'add', '--name', 'Audited', '--redirect-uri', 'https://audited.example.com/cb'], 'clients.add'],
      [['clients', 'list'], 'clients.list'],
      [['keys', 'list'], 'keys.list'],
      [['keys', 'rotate', '--alg', 'ES256'], 'keys.rotate'],
      [['audit', 'verify'], 'audit.verify'],
      [['audit', 'export', '--action', 'none.such'], 'audit.export'],
    ];
    const ids = new Set<string>();
    for (const [argv, action, stdin] of commands) {
      const start = await head();
      const run = ok(await cli(argv, stdin));
      const rows = await rowsAfter(start);
      assert.equal(rows.length, 1, `${argv.join(' ')}: one row`);
      const [row] = rows;
      assert.deepEqual([row!.action, row!.actor_type, row!.actor_id, row!.actor_acr, row!.ip, row!.result, row!.reason], [action, 'cli', null, null, null, 'ok', null], argv.join(' '));
      assert.match(row!.request_id!, UUID);
      ids.add(row!.request_id!);
      if (action === 'clients.add') {
        const clientId = /^client_id:\s+(\S+)$/m.exec(run.stdout)![1]!;
        assert.equal(row!.target_id, clientId);
        const removed = await head();
        ok(await cli(['clients', 'remove', clientId]));
        const [remove] = await rowsAfter(removed);
        assert.deepEqual([remove!.action, remove!.actor_type, remove!.target_type, remove!.target_id, remove!.result], ['clients.remove', 'cli', 'client', clientId, 'ok']);
        assert.equal((remove!.before as { name: string }).name, 'Audited', 'the client as it was');
      }
      if (action === 'keys.rotate') {
        const rotated = (row!.after as { rotated: string[] }).rotated;
        assert.equal(rotated.length, 1);
        assert.ok(!(row!.before as { active: { kid: string }[] }).active.some((k) => k.kid === rotated[0]));
      }
    }
    assert.equal(ids.size, commands.length, 'a request id per run');
    assert.equal(ok(await cli(['audit', 'verify'])).stdout, `audit log intact: ${await head() - 1} row(s) verified, from the first row to row ${await head() - 1}\n`);
  });

  it('a refused operation leaves a denied row with its reason; nothing else is written', async () => {
    const start = await head();
    const users = await knex()('users').count<{ n: number }[]>('id as n');
    const refusals: [string[], string, string, string | null][] = [
      [['users', 'add', '--email', 'not-an-address', '--password-stdin'], 'users.add', 'user.email_invalid: "not-an-address" is not a valid email address', null],
      [['clients', 'remove', 'no-such-client'], 'clients.remove', 'client.not_found: no client with id no-such-client', 'no-such-client'],
      [['keys', 'rotate', '--alg', 'HS256'], 'keys.rotate', 'keys.alg_unknown: HS256 must be one of RS256, ES256, EdDSA', null],
      [['clients', 'add', '--name', 'Bad', '--redirect-uri', 'http://app.example.com/cb'], 'clients.add', 'client.invalid: http://app.example.com/cb must use https (http is allowed only for localhost, 127.0.0.1 and [::1])', null],
      [['audit', 'export', '--format', 'xml'], 'audit.export', 'audit.format_unknown: format must be one of csv, ndjson', null],
    ];
    for (const [argv] of refusals) assert.notEqual((await cli(argv, 'a long enough password')).code, 0, argv.join(' '));
    const rows = await rowsAfter(start);
    assert.deepEqual(rows.map((r) => [r.action, r.result, r.reason, r.target_id, r.actor_type]), refusals.map(([, action, reason, target]) => [action, 'denied', reason, target, 'cli']));
    for (const r of rows) assert.equal(r.after, null, 'nothing was made');
    assert.deepEqual(await knex()('users').count<{ n: number }[]>('id as n'), users);
  });

  it('an unexpected failure leaves an error row naming the error, not its message', async () => {
    const s = services();
    const failing = {
      ...s, store: { ...s.store, users: { ...s.store.users, create: async () => { throw new TypeError('database on fire: secret details'); } } },
    } as Services;
    const start = await head();
    await assert.rejects(addUser(failing, { via: 'cli' }, { email: 'fails@example.com', password: 'a long enough password' }), /on fire/);
    const [row] = await rowsAfter(start);
    assert.deepEqual([row?.action, row?.result, row?.reason], ['users.add', 'error', 'TypeError']);
  });

  it('clients add and users add: the client secret and the password never reach the audit table, its export or the events', async () => {
    const start = await head();
    const added = JSON.parse(ok(await cli(['clients', 'add', '--name', 'Secretive', '--redirect-uri', 'https://secretive.example.com/cb', '--json'])).stdout) as { client_secret: string; client_id: string };
    const password = 'the password that must stay out of the audit log';
    ok(await cli(['users', 'add', '--email', 'secretive@example.com', '--password-stdin'], password));
    const hash = (await services().store.users.findByEmail('secretive@example.com'))!.passwordHash!;
    assert.ok(added.client_secret.length >= 40);
    const [row] = (await rowsAfter(start)).filter((r) => r.action === 'clients.add');
    assert.equal((row!.after as { clientSecret: string }).clientSecret, REDACTED, 'the field is there, its value is not');
    const table = JSON.stringify(await knex()('audit_log').select('*'));
    const events = JSON.stringify(await knex()('security_events').select('*'));
    const exports = ok(await cli(['audit', 'export', '--format', 'csv'])).stdout + ok(await cli(['audit', 'export'])).stdout;
    for (const secret of [added.client_secret, password, hash]) {
      for (const [where, text] of [['the table', table], ['the events', events], ['the exports', exports], ['the log', server.logText()]] as const) {
        assert.ok(!text.includes(secret), `a secret in ${where}`);
      }
    }
    assert.ok(exports.includes(added.client_id), 'the exports do hold the client');
  });

  it('an action on a user is mirrored into their security activity with the actor; it outlives the user, and so does the audit row', async () => {
    const admin: Actor = { via: 'console', userId: 'admin-7', roles: ['admin'], ip: '198.51.100.7', userAgent: 'Console browser', acr: 'phr', requestId: 'req-console-1' };
    const start = await head();
    const user = await addUser(services(), admin, { email: 'mirrored@example.com', password: 'mirrored has a long password' });
    const [row] = await rowsAfter(start);
    assert.deepEqual(
      [row!.actor_type, row!.actor_id, row!.actor_acr, row!.ip, row!.user_agent, row!.request_id, row!.target_type, row!.target_id],
      ['user', 'admin-7', 'phr', '198.51.100.7', 'Console browser', 'req-console-1', 'user', user.id],
    );
    const [event] = await services().store.events.forUser(user.id);
    assert.deepEqual([event?.type, event?.ip, event?.details], ['user.created', '198.51.100.7', { via: 'console', by: 'admin-7', admin: false }]);
    assert.equal(createRenderer(services().config).t('account.activity.types.user.created'), 'Account created', 'the activity page reads it');

    await knex()('users').where({ id: user.id }).delete();
    assert.equal(await services().store.users.findById(user.id), undefined);
    assert.deepEqual((await services().store.events.forUser(user.id)).map((e) => [e.type, e.userId]), [['user.created', user.id]], 'the trail keeps the id');
    const trail = ndjson(ok(await cli(['audit', 'export', '--target', `user:${user.id}`])).stdout);
    assert.deepEqual(trail.map((r) => [r.action, r.target_id]), [['users.add', user.id]]);
    assert.equal(ok(await cli(['audit', 'verify'])).code, 0);
    const keys = await knex().raw(`select conname from pg_constraint where conrelid = 'security_events'::regclass and contype = 'f'`);
    assert.deepEqual(keys.rows, [], 'no foreign key takes events with their user');
  });

  it('exports NDJSON and CSV (RFC 4180, formulas neutralised), filtered by action, actor, target, result and time', async () => {
    const evil = '=HYPERLINK("https://evil.example","click"),x';
    const console: Actor = { via: 'console', userId: 'admin-9', roles: ['admin'], ip: '203.0.113.9', userAgent: '@agent, "quoted"', acr: 'urn:latchkey:acr:mfa' };
    await cli(['clients', 'remove', evil]);
    await addUser(services(), console, { email: 'exported@example.com', password: 'exported has a long password' });

    const removals = ndjson(ok(await cli(['audit', 'export', '--action', 'clients.remove', '--result', 'denied'])).stdout);
    assert.ok(removals.length >= 2);
    assert.ok(removals.every((r) => r.action === 'clients.remove' && r.result === 'denied'));
    const mine = removals.at(-1)!;
    assert.equal(mine.target_id, evil);
    assert.deepEqual(Object.keys(mine), ['seq', 'time', 'actor_type', 'actor_id', 'actor_acr', 'ip', 'user_agent', 'request_id', 'action', 'target_type', 'target_id', 'result', 'reason', 'before', 'after', 'prev_hash', 'hash']);

    const byConsole = ndjson(ok(await cli(['audit', 'export', '--actor', 'user:admin-9'])).stdout);
    assert.deepEqual(byConsole.map((r) => [r.action, r.actor_id, r.actor_acr]), [['users.add', 'admin-9', 'urn:latchkey:acr:mfa']]);
    assert.deepEqual(ndjson(ok(await cli(['audit', 'export', '--actor', 'admin-9'])).stdout).map((r) => r.seq), byConsole.map((r) => r.seq));
    const byCli = ndjson(ok(await cli(['audit', 'export', '--actor', 'cli'])).stdout);
    assert.ok(byCli.length > 5 && byCli.every((r) => r.actor_type === 'cli'));
    const until = ndjson(ok(await cli(['audit', 'export', '--until', byConsole[0]!.time])).stdout);
    assert.ok(until.length > 0 && until.every((r) => r.seq < byConsole[0]!.seq));
    const since = ndjson(ok(await cli(['audit', 'export', '--since', byConsole[0]!.time, '--action', 'users.add'])).stdout);
    assert.deepEqual(since.map((r) => r.seq), [byConsole[0]!.seq]);
    assert.equal(ok(await cli(['audit', 'export', '--since', '2999-01-01'])).stdout, '');
    const badTime = await cli(['audit', 'export', '--since', '2025-01-31T12:00']);
    assert.deepEqual([badTime.code, badTime.stderr], [2, 'latchkey: --since: "2025-01-31T12:00" is not a date (2025-01-31, UTC) or a time with its zone (2025-01-31T12:00:00Z)\n']);

    const csv = ok(await cli(['audit', 'export', '--format', 'csv', '--action', 'clients.remove', '--action', 'users.add', '--since', mine.time])).stdout;
    const [header, ...records] = parseCsv(csv);
    assert.deepEqual(header, Object.keys(mine));
    const [removal, added] = records;
    const col = (name: string) => header!.indexOf(name);
    assert.equal(removal![col('target_id')], `'${evil}`, 'a cell starting with = is text');
    assert.equal(removal![col('reason')], `client.not_found: no client with id ${evil}`);
    assert.equal(added![col('user_agent')], `'@agent, "quoted"`);
    assert.equal(added![col('seq')], String(byConsole[0]!.seq));
    assert.deepEqual(JSON.parse(added![col('after')]!), byConsole[0]!.after, 'before and after as JSON text');
    assert.equal(added![col('hash')], byConsole[0]!.hash);
    assert.ok(csv.includes(`"'=HYPERLINK(""https://evil.example"",""click""),x"`), 'quoted, quotes doubled');
    for (const [value, cell] of [['+1', "'+1"], ['-2', "'-2"], ['@x', "'@x"], ['\tx', "'\tx"], ['a,b', '"a,b"'], ['a\nb', '"a\nb"'], ['plain', 'plain'], [' =1+1', "' =1+1"], ['  @x', "'  @x"], [' plain', ' plain']] as const) {
      assert.equal(csvField(value), cell);
    }
  });

  it('streams the export a chunk at a time through the output it is given, not in one piece', async () => {
    const audit = services().store.audit;
    for (let i = 0; i < 300; i++) {
      await audit.append({
        actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId: null, action: 'bulk.row',
        targetType: 'thing', targetId: `thing-${i}`, result: 'ok', reason: null, before: null, after: { filler: 'x'.repeat(300) },
      });
    }
    const chunks: string[] = [];
    const res = ok(await cli(['audit', 'export', '--action', 'bulk.row'], '', async (text) => void chunks.push(text)));
    assert.equal(res.stdout, '', 'everything went through the stream');
    assert.ok(chunks.length >= 2, `${chunks.length} chunk(s)`);
    const expected = Array.from({ length: 300 }, (_, i) => `thing-${i}`);
    assert.deepEqual(ndjson(chunks.join('')).map((r) => r.target_id), expected);

    // Through the admin socket (the embedded database's CLI): the same chunks, and a slow reader holds the server back.
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-audit-socket-'));
    const socket = await serveAdminSocket(async () => services(), adminSocketPath(dir));
    try {
      const received: string[] = [];
      const slow = (text: string) => new Promise<void>((resolve) => setTimeout(() => (received.push(text), resolve()), 20));
      const viaSocket = await callAdminSocket(adminSocketPath(dir), ['audit', 'export', '--action', 'bulk.row'], '', slow);
      assert.deepEqual([viaSocket.code, viaSocket.stdout, viaSocket.stderr], [0, '', '']);
      assert.ok(received.length >= 2);
      assert.deepEqual(ndjson(received.join('')).map((r) => r.target_id), expected);
      const collected = await callAdminSocket(adminSocketPath(dir), ['audit', 'export', '--action', 'bulk.row', '--format', 'csv'], '');
      assert.equal(collected.code, 0);
      assert.equal(parseCsv(collected.stdout).length, 301, 'without a reader, the streamed output is in the result');
    } finally {
      await new Promise<void>((resolve) => socket.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the audit log\'s retention and redaction', () => {
  it('ships a retention of 365 days; the maintenance purge applies it and the log still verifies from its anchor', async () => {
    assert.equal(loadConfig({ env: {} }).audit.retentionDays, 365);
    assert.equal(loadConfig({ env: { LATCHKEY_AUDIT_RETENTION_DAYS: '30' } }).audit.retentionDays, 30);
    const db = await createTestDatabase();
    const services = createServices(loadConfig({ env: {}, overrides: { env: 'test', log: { level: 'silent' } } }), { database: db.database });
    try {
      await db.database.migrate();
      const old = auditLogRepository(db.database.knex, () => new Date(Date.now() - 366 * 86400_000));
      for (let i = 0; i < 4; i++) {
        await old.append({
          actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId: null, action: 'old.row',
          targetType: null, targetId: null, result: 'ok', reason: null, before: null, after: null,
        });
      }
      ok(await runCommand(['users', 'list'], services, { stdin: async () => '' }));
      assert.equal((await purgeExpired(services)).auditLog, 4);
      const res = await runCommand(['audit', 'verify', '--json'], services, { stdin: async () => '' });
      assert.deepEqual(JSON.parse(res.stdout), { ok: true, checked: 1, anchorSeq: 4, headSeq: 5 });
      const text = await runCommand(['audit', 'verify'], services, { stdin: async () => '' });
      assert.equal(text.stdout, 'audit log intact: 2 row(s) verified, from the anchor (row 4, the last one purged) to row 6\n');
    } finally {
      await db.database.close();
      await db.drop();
    }
    function ok(r: CommandResult) {
      assert.equal(r.code, 0, r.stderr);
      return r;
    }
  });

  it('a broken chain makes audit verify exit 1 with the first broken row', async () => {
    const db = await createTestDatabase();
    const services = createServices(loadConfig({ env: {}, overrides: { env: 'test', log: { level: 'silent' } } }), { database: db.database });
    try {
      await db.database.migrate();
      for (let i = 0; i < 3; i++) await runCommand(['keys', 'list'], services, { stdin: async () => '' });
      await db.database.knex.transaction(async (trx) => {
        await trx.raw(`select set_config('latchkey.audit_purge', 'on', true)`);
        await trx('audit_log').where({ seq: 2 }).delete();
      });
      const res = await runCommand(['audit', 'verify'], services, { stdin: async () => '' });
      assert.deepEqual([res.code, res.stdout], [1, 'audit log broken at row 2: row 2 is missing (deleted)\n']);
      const json = await runCommand(['audit', 'verify', '--json'], services, { stdin: async () => '' });
      assert.deepEqual([json.code, JSON.parse(json.stdout)], [1, {
        ok: false, checked: 1, anchorSeq: 0, headSeq: 4, seq: 2, problem: 'missing', message: 'row 2 is missing (deleted)',
      }]);
    } finally {
      await db.database.close();
      await db.drop();
    }
  });

  it('redacts every field on the deny-list, at any depth and in any spelling, and secret-looking strings; keeps the rest', () => {
    const input = {
      clientId: 'abc', client_secret: 's1', clientSecret: 's2', 'Client-Secret': 's3', password: 'p', passwordHash: 'h',
      nested: { deeper: [{ totp_seed: 'JBSWY3DPEHPK3PXP', refreshToken: 'rt', accessToken: 'at', id_token: 'it', private_sealed: 'ps' }] },
      jwk: { kty: 'RSA', n: 'public-modulus', e: 'AQAB', d: 'private-exponent', p: 'p1', q: 'q1', dp: 'x', dq: 'y', qi: 'z' },
      note: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', pem: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----',
      when: new Date('2025-01-02T03:04:05.678Z'), gone: undefined, count: 3, ok: true, none: null,
      token_endpoint_auth_method: 'client_secret_basic', redirect_uris: ['https://a.example/cb'],
      text: 'nul\u0000 and lone \ud800 surrogate',
      link: 'https://id.example/invite?token=QUJDREVGR0hJSktMTU5PUFFSU1RVVldY', note2: 'sent https://id.example/reset/confirm?token=QUJDREVGR0hJSktMTU5PUFFSU1RVVldY',
    };
    const out = redact(input) as Record<string, unknown>;
    assert.deepEqual(out, {
      clientId: 'abc', client_secret: REDACTED, clientSecret: REDACTED, 'Client-Secret': REDACTED, password: REDACTED, passwordHash: REDACTED,
      nested: { deeper: [{ totp_seed: REDACTED, refreshToken: REDACTED, accessToken: REDACTED, id_token: REDACTED, private_sealed: REDACTED }] },
      jwk: { kty: 'RSA', n: 'public-modulus', e: 'AQAB', d: REDACTED, p: REDACTED, q: REDACTED, dp: REDACTED, dq: REDACTED, qi: REDACTED },
      note: REDACTED, pem: REDACTED, when: '2025-01-02T03:04:05.678Z', count: 3, ok: true, none: null,
      token_endpoint_auth_method: 'client_secret_basic', redirect_uris: ['https://a.example/cb'],
      text: 'nul and lone \ufffd surrogate',
      link: REDACTED, note2: REDACTED,
    });
    const text = JSON.stringify(out);
    for (const secret of ['s1', 's2', 's3', ':"p"', ':"h"', 'JBSWY3DPEHPK3PXP', 'rt', 'private-exponent', 'argon2', 'MIIE', 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldY']) assert.ok(!text.includes(secret), secret);
  });
});
