/**
 * `server.workers` (LATCHKEY_WORKERS): the real server started as its own process with two workers on a
 * throw-away PostgreSQL database. Which worker answered a request is read from the log's worker id on the
 * request's line, so nothing here needs test-only code in the server. The embedded database's refusal and
 * a worker that cannot start need no PostgreSQL and run on both passes of the suite.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import type { Actor } from '../../src/admin/operations/actor.ts';
import { updateClient } from '../../src/admin/operations/clients.ts';
import { rotateKeys } from '../../src/admin/operations/keys.ts';
import type { RegisteredClient } from '../../src/oidc/clients.ts';
import { openDatabase } from '../../src/store/db.ts';
import { findForm } from '../helpers/browser.ts';
import { createTestDatabaseUrl, TEST_DATABASE_URL } from '../helpers/db.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';
import { freshGet, FreshConnectionBrowser, spawnServer, startServerProcess, type ServerProcess } from './workers-process.ts';

const cli: Actor = { via: 'cli', requestId: 'req-workers' };
const OLD = 'http://localhost:9999/old-cb';
const NEW = 'http://localhost:9999/new-cb';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function eventually<T>(check: () => Promise<T | undefined | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

describe('server.workers on PostgreSQL: two worker processes on one port', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL', timeout: 300_000 }, () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: ServerProcess;
  /** An in-process instance on the same database, for what the tests set up (users, clients, keys). */
  let helper: TestServer | undefined;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-workers-'));
  const seenPids = new Set<number>();

  before(async () => {
    db = await createTestDatabaseUrl();
    // Keys rotated elsewhere are looked for every second, so a test can see each worker take them up.
    const configFile = path.join(dataDir, 'workers.yaml');
    writeFileSync(configFile, 'keys:\n  refreshSeconds: 1\n');
    cluster = await startServerProcess({ LATCHKEY_DATABASE_URL: db.url, LATCHKEY_WORKERS: '2', LATCHKEY_CONFIG: configFile, LATCHKEY_DATA_DIR: dataDir });
    for (const pid of await cluster.workerPids()) seenPids.add(pid);
  });
  after(async () => {
    await helper?.stop();
    if (cluster && cluster.child.exitCode === null && cluster.child.signalCode === null) {
      for (const pid of await cluster.workerPids()) seenPids.add(pid);
      cluster.child.kill('SIGKILL');
    }
    for (const pid of seenPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const setUp = async () => (helper ??= await startTestServer({
    db: { database: openDatabase({ url: db.url }), url: db.url, drop: async () => {} },
    config: { issuer: cluster.url },
  }));

  /** The ids of the workers that answered `n` requests for `path`, each on a new connection. */
  async function workersAnswering(path: string, n: number): Promise<Set<number | undefined>> {
    const workers = new Set<number | undefined>();
    for (let i = 0; i < n; i++) {
      const res = await cluster.get(path);
      assert.equal(res.status, 200, `${path}: ${res.body.slice(0, 200)}`);
      workers.add(res.worker);
    }
    return workers;
  }

  it('starts two workers on one port; the first alone migrated, made the keys and issued the setup link; requests are answered by both', async () => {
    const log = cluster.log();
    const started = log.filter((l) => l.msg === 'latchkey started').map((l) => l.worker);
    assert.deepEqual(started.sort(), [1, 2], 'two workers, each logging with its id');
    assert.deepEqual(log.filter((l) => l.msg === 'database migrated').map((l) => l.worker), [1], 'migrations ran once, in the first worker');
    assert.deepEqual(log.filter((l) => l.msg === 'signing keys generated').map((l) => l.worker), [1]);
    assert.equal((await cluster.workerPids()).length, 2, 'two processes below the primary');

    assert.equal(cluster.output.stdout.split('Latchkey is running').length - 1, 1, 'one banner, from the primary');
    assert.match(cluster.output.stdout, /Workers: 2 processes/);
    const link = /^\s+http:\/\/localhost:\d+(\/setup\?token=\S+)$/m.exec(cluster.output.stdout)?.[1];
    assert.ok(link, cluster.output.stdout);
    assert.deepEqual(await workersAnswering(link, 4), new Set([1, 2]), 'the one setup link opens on either worker');
    assert.deepEqual(await workersAnswering('/.well-known/openid-configuration', 6), new Set([1, 2]));
  });

  it('a sign-in started on one worker finishes on the other: interactions and sessions live in the database', async () => {
    const server = await setUp();
    const dave = await server.newUser('dave');
    const client = await server.addClient({ name: 'Spread over workers', redirectUris: ['http://localhost:9999/cb'] });
    const rp = await RelyingParty.create(cluster.url, client);
    const { url, checks } = await rp.authorization();
    const from = cluster.log().length;
    const back = await drive(new FreshConnectionBrowser(cluster.url), url, dave);
    const pages = cluster.log().slice(from).filter((l) => l.msg === 'request' && /^\/(auth|interaction)\b/.test(String(l.path)));
    assert.ok(pages.length >= 4, JSON.stringify(pages));
    assert.deepEqual(new Set(pages.map((l) => l.worker)), new Set([1, 2]), 'the sign-in\'s pages were served by both workers');
    const tokens = await oidc.authorizationCodeGrant(rp.config, new URL(back), checks);
    assert.equal(tokens.claims()!.sub, dave.id);
  });

  it('a client\'s change reaches every worker at once (LISTEN/NOTIFY), and so do rotated signing keys', async () => {
    const server = await setUp();
    const client = await server.addClient({ name: 'Edited under workers', redirectUris: [OLD] });
    /** What each worker answers to an authorization request for `redirectUri`: `sign-in` or the error code. */
    const answers = async (client: RegisteredClient, redirectUri: string) => {
      const query = new URLSearchParams({
        client_id: client.clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGwSrEeXbY', code_challenge_method: 'S256', state: 'state-1',
      });
      const byWorker = new Map<number | undefined, string>();
      for (let i = 0; i < 4; i++) {
        const res = await cluster.get(`/auth?${query}`);
        byWorker.set(res.worker, res.status === 303 ? 'sign-in' : /Error code: <code>([a-z_]+)<\/code>/.exec(res.body)?.[1] ?? `status ${res.status}`);
      }
      return byWorker;
    };
    // Both workers have looked the client up (each keeps it in its memo) before the edit.
    assert.deepEqual(await answers(client, OLD), new Map([[1, 'sign-in'], [2, 'sign-in']]));
    await updateClient(server.server.services, cli, client.clientId, { redirectUris: [NEW] });
    await eventually(async () => {
      const [old, now] = [await answers(client, OLD), await answers(client, NEW)];
      return [...old.values()].every((a) => a === 'invalid_redirect_uri') && [...now.values()].every((a) => a === 'sign-in') && old.size === 2;
    }, 2000, 'both workers refuse the removed redirect URI and take the new one');

    const [kid] = await rotateKeys(server.server.services, cli, ['RS256']);
    await eventually(async () => {
      const seen = new Map<number | undefined, boolean>();
      for (let i = 0; i < 4; i++) {
        const res = await cluster.get('/jwks');
        seen.set(res.worker, (JSON.parse(res.body) as { keys: { kid: string }[] }).keys.some((k) => k.kid === kid));
      }
      return seen.size === 2 && [...seen.values()].every(Boolean);
    }, 10_000, 'both workers publish the rotated key');
  });

  it('a worker killed with SIGKILL is replaced, and the service keeps answering', async () => {
    const [victim, other] = await cluster.workerPids();
    assert.ok(victim && other);
    process.kill(victim, 'SIGKILL');
    await sleep(300); // the primary hears of the exit; a request already handed to the dead worker is lost with it
    const statuses: number[] = [];
    await eventually(async () => {
      statuses.push((await freshGet(`${cluster.url}/healthz`)).status);
      const pids = await cluster.workerPids();
      return pids.length === 2 && !pids.includes(victim) && cluster.log().some((l) => l.msg === 'worker replaced');
    }, 60_000, 'a new worker in the dead one\'s place');
    assert.ok(statuses.every((s) => s === 200), `every request answered meanwhile: ${statuses.join(',')}`);
    const died = cluster.log().find((l) => l.msg === 'worker died; starting another');
    assert.equal(died?.exit, 'SIGKILL');
    for (const pid of await cluster.workerPids()) seenPids.add(pid);
    const workers = await workersAnswering('/healthz', 6);
    assert.equal(workers.size, 2, 'two workers answer again');
    assert.ok([...workers].some((w) => (w ?? 0) > 2), 'one of them is the new worker');
  });

  it('SIGTERM to the primary: requests in flight finish, every worker stops, the primary exits 0 and the port closes', async () => {
    const server = await setUp();
    const client = await server.addClient({ name: 'Shutdown', redirectUris: ['http://localhost:9999/cb'] });
    const rp = await RelyingParty.create(cluster.url, client);
    // Sixteen sign-in pages, then their passwords all at once: argon2 keeps them in flight for a while.
    const pages = await Promise.all(Array.from({ length: 16 }, async () => {
      const user = await server.newUser('stop');
      const browser = new FreshConnectionBrowser(cluster.url);
      const page = await browser.follow((await rp.authorization()).url);
      return { browser, page, user };
    }));
    const workers = await cluster.workerPids();
    let signalledAt = 0;
    const posts = pages.map(async ({ browser, page, user }) => {
      const form = findForm(page.body, '/login');
      const res = await browser.request(new URL(form.action, page.url).toString(), { form: { ...form.hidden, email: user.email, password: user.password } });
      return { status: res.status, location: res.headers.get('location') ?? '', after: signalledAt > 0 };
    });
    // Once the first is answered the others have reached their workers and wait on argon2.
    await Promise.race(posts);
    signalledAt = Date.now();
    cluster.child.kill('SIGTERM');
    const results = await Promise.all(posts);
    assert.deepEqual(results.map((r) => r.status), results.map(() => 303), JSON.stringify(results));
    assert.ok(results.every((r) => /\/auth\//.test(r.location)), 'each password was accepted and the sign-in sent on');
    assert.ok(results.some((r) => r.after), 'some requests were still in flight when the signal came');
    assert.deepEqual(await cluster.exited, { code: 0, signal: null }, cluster.output.stderr);
    for (const pid of workers) assert.ok(!alive(pid), `worker ${pid} stopped`);
    const log = cluster.log();
    const stopped = log.filter((l) => l.msg === 'shutting down');
    assert.equal(stopped.filter((l) => l.role === 'primary').length, 1);
    assert.equal(stopped.filter((l) => l.worker !== undefined).length, 2, 'each worker drained and stopped itself');
    await assert.rejects(freshGet(`${cluster.url}/healthz`), 'nothing listens on the port any more');
  });
});

describe('server.workers with no PostgreSQL to share', { timeout: 120_000 }, () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-workers-embedded-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('an explicit number of workers on the embedded database is refused at start, naming the setting', async () => {
    const port = String(await freePort());
    const run = spawnServer({ LATCHKEY_WORKERS: '2', LATCHKEY_DATA_DIR: dataDir, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: port });
    assert.deepEqual(await run.exited, { code: 2, signal: null });
    assert.match(run.output.stderr, /server\.workers: 2 worker processes need PostgreSQL \(set LATCHKEY_DATABASE_URL\); the embedded database belongs to one process/);
    await assert.rejects(freshGet(`http://127.0.0.1:${port}/healthz`));
  });

  it('auto on the embedded database runs one process, and the log says why', async () => {
    const single = await startServerProcess({ LATCHKEY_WORKERS: 'auto', LATCHKEY_DATA_DIR: dataDir });
    try {
      assert.deepEqual(await single.workerPids(), [], 'no worker processes');
      assert.doesNotMatch(single.output.stdout, /Workers:/);
      const warning = single.log().find((l) => l.level === 40 && /server\.workers is auto/.test(String(l.msg)));
      assert.ok(warning, single.output.stdout);
      assert.equal((await freshGet(`${single.url}/healthz`)).status, 200);
    } finally {
      assert.deepEqual(await single.stop(), { code: 0, signal: null });
    }
  });

  it('a worker that cannot start (the database is unreachable) stops the primary with its message and a non-zero status, without retrying', async () => {
    const run = spawnServer({
      LATCHKEY_WORKERS: '2', LATCHKEY_DATABASE_URL: 'postgres://latchkey@127.0.0.1:1/nowhere', LATCHKEY_DATA_DIR: dataDir,
      LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: String(await freePort()),
    });
    assert.deepEqual(await run.exited, { code: 1, signal: null });
    assert.match(run.output.stderr, /^latchkey: cannot start: .*ECONNREFUSED/m, 'the worker\'s own message');
    assert.equal(run.output.stderr.match(/could not start/g)?.length, 1, `one worker tried, once:\n${run.output.stderr}`);
    assert.match(run.output.stderr, /latchkey: worker 1 could not start \(code 1\); stopping/);
  });
});
