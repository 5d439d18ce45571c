/**
 * `latchkey export` / `latchkey import`: moving from the embedded database to PostgreSQL (to a second
 * embedded database when the suite runs without PostgreSQL). A user with a password, an authenticator app
 * and a security question, a confidential client and rotated signing keys go across; on a server started
 * on the new database the user signs in with the same password and app, the client uses its old secret,
 * and an ID token signed before the export verifies against the new server's JWKS. Refusals (another
 * encryption key, a document cut short, a database that is not empty) leave the target as it was; so do
 * documents changed after their export (an administrator added, a role edited, the audit chain's head
 * moved, rows cut off, a keyCheck copied into a document sealed under another key) and documents whose
 * audit log is not the chain they describe. An export on the embedded database whose reader is paused
 * does not hold the server's one database connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../../src/admin/commands.ts';
import { DocumentMac, KEY_CHECK } from '../../src/admin/operations/export.ts';
import { rotateKeys } from '../../src/admin/operations/keys.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createServices } from '../../src/services.ts';
import { openDatabase } from '../../src/store/db.ts';
import { createSealer } from '../../src/store/seal.ts';
import { CookieClient } from '../helpers/browser.ts';
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from '../helpers/db.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addTotp, awaitFreshStep, nowSeconds, recoveryNotice, totpCode, type Browsed } from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
const CLI = { via: 'cli' } as const;
const quiet = createLogger('silent');
const io = { stdin: async () => '' };

const embedded = (): TestDatabase => ({ database: openDatabase({ memory: true }), url: undefined, drop: async () => {} });

/** Services for a database no server runs on yet (where `latchkey import` runs), migrated as the CLI does. */
async function cliServices(config: Config, db: TestDatabase) {
  await db.database.migrate();
  return createServices(config, { database: db.database, log: quiet });
}

type Doc = Record<string, unknown>[];
const rowsOf = (doc: Doc, table: string) => doc.filter((l) => l.table === table).map((l) => l.row as Record<string, unknown>);

/**
 * `doc` written as a document to `file`; with `macKey`, its last line's MAC computed again under that key
 * (what someone holding that key, and only they, can do).
 */
function writeDoc(file: string, doc: Doc, macKey?: string): string {
  const lines = doc.map((l) => `${JSON.stringify(l)}\n`);
  if (macKey) {
    const mac = new DocumentMac(macKey);
    for (const line of lines.slice(0, -1)) mac.update(line);
    lines[lines.length - 1] = `${JSON.stringify({ ...doc.at(-1), mac: mac.digest() })}\n`;
  }
  writeFileSync(file, lines.join(''));
  return file;
}

/** The end line's counts made to match the rows again (the change is not caught by a count). */
function recount(doc: Doc): Doc {
  const counts = { ...(doc.at(-1)!.counts as Record<string, number>) };
  for (const t of Object.keys(counts)) counts[t] = rowsOf(doc, t).length;
  return [...doc.slice(0, -1), { ...doc.at(-1), counts }];
}

const count = async (db: TestDatabase, table: string) => Number(((await db.database.knex(table).count({ n: '*' })) as { n: number }[])[0]!.n);

describe(`export from the embedded database, import into ${TEST_DATABASE_URL ? 'PostgreSQL' : 'another embedded database'}`, () => {
  const person = { email: 'moving@example.com', password: 'a password that moves house' };
  let source: TestServer;
  let target: TestServer | undefined;
  let targetDb: TestDatabase;
  let dir: string;
  let file: string;
  let key: Buffer;
  let seed: string;
  let client: Awaited<ReturnType<TestServer['addClient']>>;
  let oldIdToken: string;
  let stepUsed: number;
  let publishedAtExport: string[];
  let userId: string;

  /** Password, then the app's code, through consent: the tokens the app gets. */
  async function signIn(server: TestServer, rp: RelyingParty) {
    await awaitFreshStep();
    const browser = new CookieClient(server.url);
    const req = await rp.authorization({ acr_values: MFA });
    const login = await browser.follow(req.url);
    assert.match(login.body, /\/login"/, 'the password page');
    const page = await browser.submit(login, '/login', { email: person.email, password: person.password });
    assert.match(new URL(page.url).pathname, /\/verify$/, `the app's code is asked for, got ${page.url}: ${page.body.slice(0, 300)}`);
    const step = Math.floor(nowSeconds() / 30);
    let p: Browsed = await browser.submit(page, '/verify', { code: totpCode(key, nowSeconds()) });
    if (recoveryNotice(p)) p = await browser.submit(p, '/continue');
    if (!p.stoppedAt && /\/confirm"/.test(p.body)) p = await browser.submit(p, '/confirm');
    assert.ok(p.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${p.status} at ${p.url}: ${p.body.slice(0, 300)}`);
    const tokens = await rp.callback(p.stoppedAt!, req.checks);
    return { tokens, step };
  }

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'latchkey-export-'));
    file = path.join(dir, 'latchkey.ndjson');
    source = await startTestServer({ db: embedded() });
    const services = source.server.services;
    const user = await source.addUser(person);
    userId = user.id;
    ({ key, seed } = await addTotp(services.store, user.id));
    await addQuestion(services.store, (s) => services.hasher.hash(s), user.id);
    client = await source.addClient({ name: 'Bank', redirectUris: [REDIRECT] });
    assert.ok(client.clientSecret, 'a confidential client');
    await rotateKeys(services, CLI);
    const signedIn = await signIn(source, await RelyingParty.create(source.url, client));
    oldIdToken = signedIn.tokens.id_token!;
    stepUsed = signedIn.step;
    // Rotated again: the key that signed it is on its way out, and only its place in the JWKS verifies the token.
    await rotateKeys(services, CLI);
    publishedAtExport = (await services.store.signingKeys.published()).map((k) => k.kid).sort();
    assert.ok(publishedAtExport.length >= 3, 'keys from two rotations');
  });

  after(async () => {
    await source?.stop();
    await target?.stop();
    await targetDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('export writes one document, readable by its owner only, with hashes and sealed secrets but no secret in the clear', async () => {
    const res = await runCommand(['export', '--out', file], source.server.services, io);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /exported 1 user\(s\), 2 method\(s\), 1 client\(s\), \d+ signing key\(s\)/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.format, 'latchkey-export');
    assert.equal(lines[0]!.version, 1);
    assert.deepEqual(lines.at(-1)!.end, true);
    const rows = (table: string) => lines.filter((l) => l.table === table).map((l) => l.row as Record<string, unknown>);
    assert.match(String(rows('users')[0]!.password_hash), /^\$argon2id\$/);
    assert.match(String(rows('authenticators').find((a) => a.kind === 'totp')!.secret_sealed), /^v1\./);
    assert.match(String(rows('clients')[0]!.secret_sealed), /^v1\./);
    for (const k of rows('signing_keys')) assert.match(String(k.private_sealed), /^v1\./);
    assert.ok(rows('audit_log').length >= 2, 'the audit log (the key rotations) goes along');
    assert.equal(rows('consents').length, 1, 'the consent the user gave the app');
    for (const secret of [seed, client.clientSecret!, person.password, 'rex the dog']) assert.ok(!text.includes(secret), 'no secret in the clear');
    // The private parts of the keys only sealed: no JWK "d" anywhere.
    assert.doesNotMatch(text, /"d":"/);
    const again = await runCommand(['export', '--out', file], source.server.services, io);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists: choose a new file name/);
  });

  it('import refuses a document sealed under another key, and one cut short, leaving the database empty', async () => {
    const other = embedded();
    try {
      const otherKey = loadConfig({ env: {}, overrides: { env: 'test', secrets: { encryptionKey: 'another encryption key, 32 characters or more', cookieKeys: ['another cookie key of 32 characters or more'] } } });
      const res = await runCommand(['import', file], await cliServices(otherKey, other), io);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /sealed under another secrets\.encryptionKey/);
      assert.equal(await count(other, 'users'), 0);
      const cut = path.join(dir, 'cut.ndjson');
      writeFileSync(cut, readFileSync(file, 'utf8').trim().split('\n').slice(0, -1).join('\n'));
      const services = await cliServices(source.config, other);
      const refusedAgain = await runCommand(['import', cut], services, io);
      assert.match(refusedAgain.stderr, /audit log already has 1 row\(s\).*--without-audit-log/s, 'the refusal was audited, so the chain cannot be carried here');
      const short = await runCommand(['import', cut, '--without-audit-log'], services, io);
      assert.equal(short.code, 2);
      assert.match(short.stderr, /cut short/);
      for (const table of ['users', 'authenticators', 'clients', 'signing_keys']) assert.equal(await count(other, table), 0, `no ${table} half-imported`);
      const audit = await other.database.knex('audit_log').orderBy('seq').select('action', 'result');
      assert.deepEqual(audit, Array.from({ length: 3 }, () => ({ action: 'database.import', result: 'denied' })), 'every refusal is in the audit log');
    } finally {
      await other.database.close();
    }
  });

  it('after import into a fresh database, a server on it signs the user in with the same password and app, the client with its old secret, and verifies old tokens', async () => {
    targetDb = TEST_DATABASE_URL ? await createTestDatabase() : embedded();
    const services = await cliServices(source.config, targetDb);
    const res = await runCommand(['import', file], services, io);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /imported 1 user\(s\), 2 method\(s\), 1 client\(s\)/);
    const verified = await runCommand(['audit', 'verify', '--json'], services, io);
    const report = JSON.parse(verified.stdout) as { ok: boolean; checked: number };
    assert.equal(report.ok, true, verified.stdout);
    const actions = (await targetDb.database.knex('audit_log').orderBy('seq').select('action')).map((r: { action: string }) => r.action);
    // The export's own row follows its snapshot, so the document ends at the source's second rotation.
    assert.deepEqual(actions.filter((a) => a !== 'keys.list').slice(-4), ['keys.rotate', 'keys.rotate', 'database.import', 'audit.verify'], 'the source\'s chain, then the import');

    const question = (db: TestDatabase) => db.database.knex('authenticators').where({ user_id: userId, kind: 'security-question' }).first('id', 'secret_hash');
    assert.deepEqual(await question(targetDb), await question(source.db), 'the security question came along, its answer still a hash');

    assert.equal(await count(targetDb, 'consents'), 1, 'the consent came along (a text[] column)');

    target = await startTestServer({ db: targetDb });
    // The same code step twice would be a replay: the app's last accepted step came along.
    while (Math.floor(nowSeconds() / 30) === stepUsed) await new Promise((r) => setTimeout(r, 500));
    const { tokens } = await signIn(target, await RelyingParty.create(target.url, client));
    const claims = tokens.claims()!;
    assert.equal(claims.acr, MFA);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(claims.sub, userId, 'the same account');
    const jwks = await fetchJwks(target.url);
    assert.deepEqual(jwks.map((k) => k.kid).sort(), publishedAtExport, 'the new server publishes the keys it was given, and no new one');
    assert.ok(publishedAtExport.includes(decodeJwt(tokens.id_token!).header.kid as string), 'and signs with one of them');
    const old = verifyJwt(oldIdToken, jwks);
    assert.equal(old.payload.sub, userId, 'a token signed before the export verifies against the new JWKS');

    const wrongSecret = await fetch(`${target.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.clientId}:not-the-secret`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=authorization_code&code=x&redirect_uri=' + encodeURIComponent(REDIRECT),
    });
    assert.equal(wrongSecret.status, 401, 'another secret is refused (the old one was checked, not skipped)');
  });

  /** Imports `doc` into a new database under the source's key: the result, and what the database then holds. */
  async function importInto(name: string, doc: Doc, macKey?: string) {
    const db = TEST_DATABASE_URL ? await createTestDatabase() : embedded();
    try {
      const res = await runCommand(['import', writeDoc(path.join(dir, `${name}.ndjson`), doc, macKey)], await cliServices(source.config, db), io);
      const held = Object.fromEntries(await Promise.all(['users', 'authenticators', 'clients', 'signing_keys', 'consents', 'security_events'].map(async (t) => [t, await count(db, t)] as const)));
      const audit = await db.database.knex('audit_log').orderBy('seq').select('action', 'result');
      const chain = await db.database.knex('audit_chain').first('head_seq', 'anchor_seq');
      return { res, held, audit, chain };
    } finally {
      await db.database.close();
      await db.drop();
    }
  }

  async function assertRefused(name: string, doc: Doc, pattern: RegExp, macKey?: string) {
    const { res, held, audit, chain } = await importInto(name, doc, macKey);
    assert.equal(res.code, 2, `${name}: refused (${res.stdout}${res.stderr})`);
    assert.match(res.stderr, pattern, name);
    assert.deepEqual(held, { users: 0, authenticators: 0, clients: 0, signing_keys: 0, consents: 0, security_events: 0 }, `${name}: nothing imported`);
    assert.deepEqual(audit, [{ action: 'database.import', result: 'denied' }], `${name}: only the refusal is in the audit log`);
    assert.equal(Number(chain.head_seq), 1, `${name}: the chain is the target's own, with the refusal its first row`);
    assert.equal(Number(chain.anchor_seq), 0, name);
  }

  it('import refuses a document changed after its export: an added administrator, an edited role, a moved chain head, rows cut off, a keyCheck copied into a document of another key', async () => {
    const doc = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const changed = /changed after its export \(its MAC does not match/;
    // The untouched document, through the same helper: it imports (so each refusal below is the change's).
    const untouched = await importInto('untouched', doc);
    assert.equal(untouched.res.code, 0, untouched.res.stderr);
    assert.equal(untouched.held.users, 1);

    const user = rowsOf(doc, 'users')[0]!;
    const at = doc.findIndex((l) => l.table === 'users');
    const intruder = { ...user, id: '00000000-0000-4000-8000-000000000666', email: 'intruder@example.com', email_normalized: 'intruder@example.com', roles: ['admin'] };
    await assertRefused('added-admin', recount([...doc.slice(0, at + 1), { table: 'users', row: intruder }, ...doc.slice(at + 1)]), changed);

    const promoted = doc.map((l) => (l.table === 'users' ? { table: 'users', row: { ...(l.row as object), roles: ['admin'] } } : l));
    await assertRefused('edited-role', promoted, changed);

    const audit = rowsOf(doc, 'audit_log');
    const cutAt = audit.at(-2)!;
    assert.ok(cutAt.seq !== audit.at(-1)!.seq, 'the chain has a row after the new head');
    const headMoved = doc
      .filter((l) => !(l.table === 'audit_log' && Number((l.row as { seq: number }).seq) > Number(cutAt.seq)))
      .map((l) => (l.table === 'audit_chain' ? { table: 'audit_chain', row: { ...(l.row as object), head_seq: cutAt.seq, head_hash: cutAt.hash } } : l));
    await assertRefused('chain-head', recount(headMoved), changed);

    const truncated = recount(doc.filter((l) => l.table !== 'security_events' && l.table !== 'audit_log' && l.table !== 'audit_chain'));
    await assertRefused('truncated', truncated, changed);

    // Someone with a key of their own seals a document with an administrator under it, and copies the
    // keyCheck of a genuine document (of the target's key) into its header: the keyCheck opens, the MAC does not.
    const otherKey = 'an attacker\'s own encryption key, 32 characters or more';
    const genuineCheck = doc[0]!.keyCheck as string;
    assert.equal(createSealer(source.config.secrets.encryptionKey).open(genuineCheck, KEY_CHECK.purpose), KEY_CHECK.text);
    await assertRefused('copied-key-check', [{ ...doc[0], keyCheck: genuineCheck }, ...promoted.slice(1)], changed, otherKey);
    // And a document without a MAC at all.
    await assertRefused('no-mac', [...promoted.slice(0, -1), { end: true, counts: promoted.at(-1)!.counts }], changed);
  });

  it('import refuses a document whose audit log is not the chain it describes (sealed under the right key), leaving nothing behind', async () => {
    const doc = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const key = source.config.secrets.encryptionKey;
    const withoutChain = recount(doc.filter((l) => l.table !== 'audit_chain'));
    await assertRefused('rows-without-chain', withoutChain, /audit log does not match its chain: \d+ row\(s\) \(1 to \d+\), but the chain runs from its anchor \(row 0\) to its head \(row 0\)/, key);
    const audit = rowsOf(doc, 'audit_log');
    const shortHead = doc.map((l) => (l.table === 'audit_chain' ? { table: 'audit_chain', row: { ...(l.row as object), head_seq: audit.at(-2)!.seq, head_hash: audit.at(-2)!.hash } } : l));
    await assertRefused('head-before-last-row', shortHead, /audit log does not match its chain/, key);
    const edited = doc.map((l) => (l.table === 'audit_log' && (l.row as { seq: number }).seq === audit[0]!.seq ? { table: 'audit_log', row: { ...(l.row as object), action: 'users.list' } } : l));
    await assertRefused('edited-row', edited, /audit log does not verify \(row 1 was altered/, key);
  });

  it('import refuses a database that is not empty', async () => {
    const services = await cliServices(source.config, targetDb);
    const before = await count(targetDb, 'users');
    const res = await runCommand(['import', file], services, io);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /this database is not empty \(it holds 1 user\(s\), 1 client\(s\)/);
    assert.equal(await count(targetDb, 'users'), before);
  });
  it('an export on the embedded database whose reader is paused does not hold the database: the server still answers', async () => {
    // More than the 64 KiB the CLI collects before its first write to the reader.
    const filler = Array.from({ length: 800 }, (_, i) => ({ user_id: userId, type: 'test.filler', details: JSON.stringify({ i, note: 'x'.repeat(200) }) }));
    await source.db.database.knex('security_events').insert(filler);
    const spools = () => readdirSync(tmpdir()).filter((d) => d.startsWith('latchkey-spool-'));
    const spoolsBefore = new Set(spools());
    let release!: () => void;
    const paused = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const reading = new Promise<void>((r) => (reached = r));
    let out = '';
    const exporting = runCommand(['export'], source.server.services, {
      stdin: io.stdin,
      stdout: async (text) => {
        out += text;
        reached();
        await paused;
      },
    });
    try {
      await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error('the export wrote nothing')), 30_000))]);
      const ready = await fetch(`${source.url}/readyz`);
      assert.equal(ready.status, 200, `the server answers a request that needs the database while the reader is paused: ${await ready.text()}`);
      const users = await source.server.services.store.users.findById(userId);
      assert.equal(users?.id, userId, 'and a lookup in the database');
      const spool = spools().filter((d) => !spoolsBefore.has(d));
      assert.equal(spool.length, 1, 'the document waits in a temporary file');
      assert.equal(statSync(path.join(tmpdir(), spool[0]!, 'export.ndjson')).mode & 0o777, 0o600, 'readable by its owner only');
    } finally {
      release();
    }
    const res = await exporting;
    assert.equal(res.code, 0, res.stderr);
    out += res.stdout;
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.format, 'latchkey-export');
    assert.equal(lines.at(-1)!.end, true, 'the whole document came through');
    assert.equal(rowsOf(lines, 'security_events').filter((r) => r.type === 'test.filler').length, 800);
    assert.deepEqual(spools().filter((d) => !spoolsBefore.has(d)), [], 'the temporary file is gone');
  });
});
