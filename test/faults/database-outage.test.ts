import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createRenderer } from '../../src/http/render.ts';
import { registerClient } from '../../src/oidc/clients.ts';
import { loadJwks } from '../../src/oidc/keys.ts';
import { createProvider } from '../../src/oidc/provider.ts';
import { createServices, type Services } from '../../src/services.ts';
import { DEAD_NETWORK_MARGIN_MS, DEFAULT_STATEMENT_TIMEOUT_MS, openDatabase } from '../../src/store/db.ts';
import { startServerProcess, type ServerProcess } from '../cluster/workers-process.ts';
import { CookieClient } from '../helpers/browser.ts';
import { TEST_DATABASE_URL, throwAwayDatabase } from '../helpers/db.ts';
import { startPgProxy, type PgProxy, type ProxyMode } from '../helpers/pg-proxy.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { addQuestion, addTotp, failureCount, leftSecondStep, nowSeconds, totpCode } from '../helpers/two-step.ts';

/**
 * PostgreSQL away while Latchkey serves (issue 15): the real server as its own process, its database
 * behind a proxy the test controls (test/helpers/pg-proxy.ts), taken away twice: refused (the host's kernel
 * answers with a reset) and black-holed (packets go nowhere, only timeouts end the waits). Meanwhile every
 * endpoint answers quickly, a 503 where it needs the database, never a stack trace; a second step sent
 * meanwhile spends nothing and counts nothing; and the service comes back by itself, with no restart.
 *
 * LATCHKEY_FAULT_OUTAGE_SECONDS sets how long each outage lasts: 6 s here (npm test, CI), 20 s for
 * `npm run fault:database`, which also runs the same through nginx and 3 instances (LATCHKEY_FAULT_CLUSTER).
 * The figures (answers by status, the slowest, the time from PostgreSQL back to the first 200) are printed
 * with the test's diagnostics.
 */
const OUTAGE_SECONDS = Number(process.env.LATCHKEY_FAULT_OUTAGE_SECONDS ?? 6);
/**
 * The bound every answer keeps during an outage, from Latchkey's own (store/db.ts): 3 s to connect, 5 s for a
 * pool connection, and for a statement sent into a dead network the statement timeout (5 s by default,
 * which PostgreSQL enforces when it can answer) plus the dead-network margin, then 2 s to spare.
 */
const ANSWER_WITHIN_MS = DEFAULT_STATEMENT_TIMEOUT_MS + DEAD_NETWORK_MARGIN_MS + 2_000;
/** A request still unanswered after this long counts as hung. */
const HUNG_MS = ANSWER_WITHIN_MS + 8_000;
const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';

interface Target {
  path: string;
  init?: RequestInit;
}

type Outcome = { path: string; status: number | 'hung' | 'network'; ms: number; body: string; contentType: string };

/** What runs Latchkey for the test: its issuer, and how its processes are doing. */
interface Setup {
  url: string;
  /** The database URL its instances use (through the proxy), and the test's own, around it. */
  direct: string;
  /** The LATCHKEY_* variables its instances share (the secrets: the test seals fixtures with them). */
  env: Record<string, string>;
  /** Latchkey processes listening for client changes (store/listen.ts): one per instance. */
  instances: number;
  running(): boolean;
  /** Each instance's JSON log lines, and anything else any of them wrote (stderr). */
  logLines(): { msg?: string }[][];
  otherOutput(): string;
  stop(): Promise<void>;
}

/** The purge runs every second, so that it runs (and fails) during the outage and again after it. */
function extraConfig(dir: string): string {
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, 'purgeIntervalSeconds: 1\nrisk:\n  newDeviceAlert: false\n');
  return file;
}

const jsonLines = (text: string) => text.split('\n').flatMap((line) => {
  if (!line.startsWith('{')) return [];
  try {
    return [JSON.parse(line) as { msg?: string }];
  } catch {
    return [];
  }
});

/** One server process, its database behind the proxy. */
async function oneInstance(proxy: () => PgProxy, setProxy: (p: PgProxy) => void, dataDir: string): Promise<Setup> {
  const db = await throwAwayDatabase(TEST_DATABASE_URL!, 'latchkey_test');
  setProxy(await startPgProxy(db.url));
  const server: ServerProcess = await startServerProcess({ LATCHKEY_DATABASE_URL: proxy().url, LATCHKEY_DATA_DIR: dataDir, LATCHKEY_CONFIG: extraConfig(dataDir), LATCHKEY_LOG_LEVEL: 'debug' });
  return {
    url: server.url,
    direct: db.url,
    env: {},
    instances: 1,
    running: () => server.child.exitCode === null && server.child.signalCode === null,
    logLines: () => [server.log()],
    otherOutput: () => `${server.output.stdout.split('\n').filter((l) => !l.startsWith('{')).join('\n')}${server.output.stderr}`,
    async stop() {
      assert.deepEqual(await server.stop(), { code: 0, signal: null }, server.output.stderr);
      await db.drop();
    },
  };
}

/** nginx and 3 instances (test/helpers/cluster.ts), the PostgreSQL server behind the proxy: the cluster's database is made through it. */
async function threeInstances(proxy: () => PgProxy, setProxy: (p: PgProxy) => void, dataDir: string): Promise<Setup> {
  const server = new URL(TEST_DATABASE_URL!);
  setProxy(await startPgProxy(server.toString()));
  const { startTestCluster } = await import('../helpers/cluster.ts');
  const cluster = await startTestCluster({ serverUrl: proxy().url, env: { LATCHKEY_CONFIG: extraConfig(dataDir), LATCHKEY_LOG_LEVEL: 'debug' } });
  const direct = new URL(cluster.databaseUrl);
  direct.host = server.host;
  const all = () => cluster.instances.map((_, i) => cluster.instanceLog(i));
  return {
    url: cluster.issuer,
    direct: direct.toString(),
    env: { ...cluster.env },
    instances: cluster.instances.length,
    running: () => cluster.instances.every((i) => i.running),
    logLines: () => all().map(jsonLines),
    otherOutput: () => all().map((text) => text.split('\n').filter((l) => !l.startsWith('{')).join('\n')).join('\n'),
    stop: () => cluster.stop(),
  };
}

const needsPostgres = !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL: the embedded database lives in the process and cannot go away';
outageSuite('one instance', oneInstance, needsPostgres);
outageSuite('nginx and 3 instances', threeInstances,
  needsPostgres || (!process.env.LATCHKEY_FAULT_CLUSTER && 'builds dist/ and starts nginx: npm run fault:database runs it (LATCHKEY_FAULT_CLUSTER=1)'));

function outageSuite(name: string, start: typeof oneInstance, skip: string | false) {
  describe(`PostgreSQL unreachable while Latchkey serves: ${name}`, { skip }, () => {
    let proxy: PgProxy;
    let server: Setup;
    let services: Services;
    let rp: RelyingParty;
    let dataDir: string;

    before(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-outage-'));
      server = await start(() => proxy, (p) => (proxy = p), dataDir);
      // The test's own way to the database, around the proxy: fixtures, and what was written when.
      const config = loadConfig({ env: server.env, overrides: { env: 'test', issuer: server.url, risk: { newDeviceAlert: false } } });
      services = createServices(config, { database: openDatabase({ url: server.direct, poolMax: 2 }) });
      const provider = createProvider({ config, store: services.store, log: services.log, render: createRenderer(config), jwks: await loadJwks(services.store) });
      rp = await RelyingParty.create(server.url, await registerClient(services.store, provider, { name: 'Bank', redirectUris: [REDIRECT] }));
    });
    after(async () => {
      await services?.database.close();
      if (proxy) proxy.setMode('forward');
      await server?.stop();
      await proxy?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    let people = 0;
    /** A user with a security question and an authenticator app, put straight into the database. */
    async function person() {
      const n = ++people;
      const email = `outage${n}@example.com`;
      const password = `outage user ${n} password`;
      const user = await services.store.users.create({ email, name: null, passwordHash: await services.hasher.hash(password), roles: [], emailVerified: true });
      await addQuestion(services.store, (s) => services.hasher.hash(s), user.id);
      const app = await addTotp(services.store, user.id);
      return { id: user.id, email, password, key: app.key, authenticatorId: app.id };
    }

    /** Signs in with the password, up to the authenticator app's page. */
    async function atSecondStep(user: { email: string; password: string }) {
      const browser = new CookieClient(server.url);
      const req = await rp.authorization({ acr_values: MFA });
      const login = await browser.follow(req.url);
      assert.equal(login.status, 200, login.body.slice(0, 300));
      const step = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(step.status, 200, `the second step, got ${step.status} at ${step.url}`);
      assert.match(step.body, /Enter the 6-digit code from/);
      return { browser, req, step };
    }

    const lastStep = async (authenticatorId: string) =>
      (await services.database.knex('authenticators').where({ id: authenticatorId }).first('last_step'))?.last_step ?? null;

    /** The instances' listening connections (store/listen.ts) on the test's database, once there is one per instance: their backend pids. */
    async function listeners(): Promise<number[]> {
      for (let i = 0; i < 100; i++) {
        const { rows } = await services.database.knex.raw<{ rows: { pid: number }[] }>(
          "select pid from pg_stat_activity where datname = current_database() and application_name = 'latchkey-listen'");
        if (rows.length === server.instances) return rows.map((r) => r.pid).sort();
        await new Promise((r) => setTimeout(r, 100));
      }
      return [];
    }

    /** One request with a deadline: its status (or hung), time and body. */
    async function probe(target: Target): Promise<Outcome> {
      const started = performance.now();
      try {
        const res = await fetch(`${server.url}${target.path}`, { redirect: 'manual', ...target.init, signal: AbortSignal.timeout(HUNG_MS) });
        const body = await res.text();
        return { path: target.path, status: res.status, ms: performance.now() - started, body, contentType: res.headers.get('content-type') ?? '' };
      } catch (err) {
        const hung = (err as Error).name === 'TimeoutError';
        return { path: target.path, status: hung ? 'hung' : 'network', ms: performance.now() - started, body: String(err), contentType: '' };
      }
    }

    /** Requests that need the database, for a browser and for programs. */
    function databaseTargets(interactionPath: string, cookie: string): Target[] {
      const html = { accept: 'text/html', cookie };
      return [
        { path: interactionPath, init: { headers: html } },
        { path: `/auth?client_id=${encodeURIComponent(rp.client.clientId)}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, init: { headers: html } },
        { path: '/token', init: { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: REDIRECT, client_id: rp.client.clientId, client_secret: rp.client.clientSecret ?? '', code_verifier: 'y'.repeat(43) }).toString() } },
        { path: '/me', init: { headers: { authorization: `Bearer ${'z'.repeat(43)}`, accept: 'application/json' } } },
      ];
    }

    /** Takes the database away for OUTAGE_SECONDS in `mode`; sends the second step meanwhile; measures the way back. */
    async function outage(mode: Exclude<ProxyMode, 'forward'>) {
      const user = await person();
      const { browser, step } = await atSecondStep(user);
      // One wrong code before: the account's failure counter holds 1, which the outage must neither lose nor grow.
      const wrong = await browser.submit(step, '/verify', { code: totpCode(user.key, nowSeconds()) === '000000' ? '111111' : '000000' });
      assert.match(wrong.body, /That code is not right/);
      const failuresBefore = await failureCount(services.database.knex, user.email);
      assert.equal(failuresBefore, 1);
      const stepBefore = await lastStep(user.authenticatorId);
      const cookie = browser.cookieHeader();
      const interactionPath = new URL(wrong.url).pathname;

      const listenerBefore = await listeners();
      assert.equal(listenerBefore.length, server.instances, 'every instance listens for client changes');
      const outcomes: Outcome[] = [];
      const health: Outcome[] = [];
      proxy.setMode(mode);
      const start = performance.now();
      const until = start + OUTAGE_SECONDS * 1000;
      // Browsers and programs keep asking, four at a time, for as long as the database is away.
      const askers = Array.from({ length: 4 }, async (_, i) => {
        const targets = databaseTargets(interactionPath, cookie);
        for (let n = i; performance.now() < until - 500; n++) outcomes.push(await probe(targets[n % targets.length]!));
      });
      const healthChecks = (async () => {
        while (performance.now() < until - 500) {
          health.push(await probe({ path: '/readyz' }), await probe({ path: '/healthz' }));
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      // The right code near the end of the outage, so that it is still good (this step or the next) afterwards.
      await new Promise((r) => setTimeout(r, Math.max(0, until - performance.now() - ANSWER_WITHIN_MS - 500)));
      const code = totpCode(user.key, nowSeconds());
      const during = await browser.submit(wrong, '/verify', { code });
      await Promise.all([...askers, healthChecks]);
      await new Promise((r) => setTimeout(r, Math.max(0, until - performance.now())));

      proxy.setMode('forward');
      const back = performance.now();
      let firstOk: number | undefined;
      while (firstOk === undefined && performance.now() - back < 30_000) {
        const ready = await probe({ path: '/readyz' });
        const page = await probe(databaseTargets(interactionPath, cookie)[0]!);
        if (ready.status === 200 && page.status === 200) firstOk = performance.now() - back;
        else await new Promise((r) => setTimeout(r, 100));
      }

      // The client cache's listener connected again (a new connection, not the one that went away).
      const listenerAfter = await listeners();
      // What was written meanwhile: nothing. The code is not spent, the counter holds what it held.
      const spent = (await lastStep(user.authenticatorId)) !== stepBefore;
      const failuresAfter = await failureCount(services.database.knex, user.email);
      // The same code works once after the outage.
      const afterwards = firstOk === undefined ? undefined : await browser.submit(wrong, '/verify', { code });
      return { outcomes, health, firstOk, during, spent, failuresBefore, failuresAfter, afterwards, listenerBefore, listenerAfter };
    }

    function checkSecondStep(r: Awaited<ReturnType<typeof outage>>) {
      assert.ok(r.firstOk !== undefined, 'the service came back by itself');
      assert.equal(r.during.status, 503, `the second step during the outage: ${r.during.status} ${r.during.body.replace(/[\s\S]*<main/, '').slice(0, 600)}`);
      assert.doesNotMatch(r.during.body, /\bat .+:\d+:\d+|Error:/, 'no stack trace');
      assert.equal(r.spent, false, 'the code sent during the outage was not spent');
      assert.equal(r.failuresAfter, r.failuresBefore, 'the failure counter holds what it held');
      assert.equal(r.listenerAfter.length, server.instances, `every instance listens again (${r.listenerBefore} -> ${r.listenerAfter})`);
      assert.ok(r.listenerAfter.every((pid) => !r.listenerBefore.includes(pid)), `on new connections (${r.listenerBefore} -> ${r.listenerAfter})`);
      assert.ok(r.afterwards && leftSecondStep(r.afterwards), `the same code after the outage: ${r.afterwards?.status} at ${r.afterwards?.url}: ${r.afterwards?.body.slice(0, 300)}`);
    }

    function report(mode: string, outcomes: Outcome[], health: Outcome[], firstOk: number | undefined) {
      const by = (o: Outcome) => (o.status === 503 ? '503' : o.status === 'hung' ? 'hung' : String(o.status));
      const counts: Record<string, number> = {};
      for (const o of outcomes) counts[by(o)] = (counts[by(o)] ?? 0) + 1;
      const slowest = Math.max(...outcomes.map((o) => o.ms));
      const byPath: Record<string, number> = {};
      for (const o of outcomes) {
        const key = o.path.replace(/\?.*/, '').replace(/^\/interaction\/.*/, '/interaction/:uid');
        byPath[key] = Math.max(byPath[key] ?? 0, Math.round(o.ms));
      }
      const line = `${mode} ${OUTAGE_SECONDS} s: ${outcomes.length} requests needing the database: ${JSON.stringify(counts)}, slowest ${Math.round(slowest)} ms (${Object.entries(byPath).map(([k, v]) => `${k} ${v}`).join(', ')}); ` +
        `/readyz ${health.filter((h) => h.path === '/readyz' && h.status === 503).length}/${health.filter((h) => h.path === '/readyz').length} not ready; ` +
        `first 200 ${firstOk === undefined ? 'never' : `${Math.round(firstOk)} ms`} after PostgreSQL was back`;
      process.stdout.write(`# ${line}\n`);
      return line;
    }

    function checkOutage(outcomes: Outcome[], health: Outcome[]) {
      assert.ok(outcomes.length >= 4, `requests were made during the outage (${outcomes.length})`);
      const problems = outcomes.flatMap((o) => {
        const wrong: string[] = [];
        if (o.status !== 503) wrong.push(`answered ${o.status}`);
        if (o.ms >= ANSWER_WITHIN_MS) wrong.push(`took ${Math.round(o.ms)} ms`);
        if (/\bat .+:\d+:\d+|Error:|knex|ECONN/.test(o.body)) wrong.push('shows internals');
        const json = o.path === '/token' || o.path === '/me';
        if (json && !(/json/.test(o.contentType) && o.body.includes('"error":"temporarily_unavailable"'))) wrong.push(`not a temporarily_unavailable JSON error: ${o.body.slice(0, 200)}`);
        if (!json && !/html/.test(o.contentType)) wrong.push(`not a page: ${o.contentType}`);
        return wrong.length ? [`${o.path.slice(0, 40)}: ${wrong.join(', ')}${o.status !== 503 ? ` (${o.body.replace(/[\s\S]*<main/, '').slice(0, 300)})` : ''}`] : [];
      });
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} of ${outcomes.length} answers during the outage were not a quick, clean 503`);
      const ready = health.filter((h) => h.path === '/readyz');
      const live = health.filter((h) => h.path === '/healthz');
      assert.ok(ready.length > 0 && ready.every((h) => h.status === 503), `/readyz says not ready: ${ready.map((h) => h.status).join(',')}`);
      assert.ok(live.length > 0 && live.every((h) => h.status === 200 && h.ms < 1000), `/healthz still answers: ${live.map((h) => `${h.status} ${Math.round(h.ms)}ms`).join(',')}`);
    }

    it('answers 503 at once while PostgreSQL refuses connections, keeps every code and counter, and comes back by itself', async (t) => {
      const r = await outage('refuse');
      t.diagnostic(report(`${name}, refused`, r.outcomes, r.health, r.firstOk));
      checkOutage(r.outcomes, r.health);
      checkSecondStep(r);
    });

    it('answers 503 within its timeouts while packets to PostgreSQL go nowhere, keeps every code and counter, and comes back by itself', async (t) => {
      const r = await outage('blackhole');
      t.diagnostic(report(`${name}, black-holed`, r.outcomes, r.health, r.firstOk));
      checkOutage(r.outcomes, r.health);
      checkSecondStep(r);
    });

    it('a write PostgreSQL cannot finish within the statement timeout is cancelled there: 503, the code not spent, and it works once after', async (t) => {
      const user = await person();
      const { browser, step } = await atSecondStep(user);
      const stepBefore = await lastStep(user.authenticatorId);
      // The test holds the authenticator's row, so the statement that spends the code waits on PostgreSQL's side.
      const held = await services.database.knex.transaction();
      let answered: Awaited<ReturnType<CookieClient['submit']>>;
      let took: number;
      try {
        await held('authenticators').where({ id: user.authenticatorId }).forUpdate().first('id');
        const code = totpCode(user.key, nowSeconds());
        const started = performance.now();
        answered = await browser.submit(step, '/verify', { code });
        took = performance.now() - started;
        // Released after the answer: a statement merely given up by Latchkey would now commit, spending the code.
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await held.commit();
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(answered.status, 503, `answered ${answered.status}: ${answered.body.replace(/[\s\S]*<main/, '').slice(0, 300)}`);
      assert.ok(took < DEFAULT_STATEMENT_TIMEOUT_MS + 2_000, `PostgreSQL cancelled it at the statement timeout (${Math.round(took)} ms)`);
      assert.equal(await lastStep(user.authenticatorId), stepBefore, 'the code was not spent behind the 503');
      // The sign-in goes on from its page (the step's challenge was taken out before the check that failed).
      const page = await browser.follow(new URL(step.url).pathname);
      assert.match(page.body, /Enter the 6-digit code from/, `the second step again: ${page.status} at ${page.url}`);
      const again = await browser.submit(page, '/verify', { code: totpCode(user.key, nowSeconds()) });
      assert.ok(leftSecondStep(again), `the code works after: ${again.status} at ${again.url}: ${again.body.slice(0, 300)}`);
      t.diagnostic(`${name}: statement cancelled after ${Math.round(took)} ms; the account's failure counter afterwards: ${await failureCount(services.database.knex, user.email)}`);
    });

    it('stayed up throughout: no crash, no unhandled rejection, and the purge ran again', async () => {
      assert.ok(server.running(), 'every server process is still running');
      assert.doesNotMatch(server.otherOutput(), /unhandled|UnhandledPromiseRejection|uncaught/i, server.otherOutput());
      for (const [i, lines] of server.logLines().entries()) {
        const purges = lines.filter((l) => l.msg === 'expired rows purged' || l.msg === 'purge failed');
        const lastFailed = purges.findLastIndex((l) => l.msg === 'purge failed');
        assert.ok(lastFailed >= 0, `instance ${i + 1}: the purge failed while the database was away`);
        assert.ok(purges.slice(lastFailed + 1).some((l) => l.msg === 'expired rows purged'), `instance ${i + 1}: and ran again once it was back`);
      }
      const page = await fetch(`${server.url}/.well-known/openid-configuration`);
      assert.equal(page.status, 200);
    });
  });
}

/** main.ts's overall bound on a shutdown, after which it exits 1 with a log line. */
const SHUTDOWN_DEADLINE_MS = 30_000;

describe('SIGTERM while packets to PostgreSQL go nowhere', { skip: needsPostgres }, () => {
  it('drains, answers the request in flight, and exits 0 well within the shutdown deadline', async (t) => {
    const db = await throwAwayDatabase(TEST_DATABASE_URL!, 'latchkey_test');
    const proxy = await startPgProxy(db.url);
    const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-outage-'));
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess({ LATCHKEY_DATABASE_URL: proxy.url, LATCHKEY_DATA_DIR: dataDir, LATCHKEY_CONFIG: extraConfig(dataDir) });
      // The pool has connections, and the client cache's listener its own: all of them cut off at once.
      assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
      proxy.setMode('blackhole');
      const inFlight = fetch(`${server.url}/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'r'.repeat(43), client_id: 'nobody' }).toString(),
      }).then((res) => res.status, (err: Error) => err.message);
      await new Promise((r) => setTimeout(r, 300));
      const started = performance.now();
      const exit = await server.stop();
      const took = performance.now() - started;
      t.diagnostic(`stopped in ${Math.round(took)} ms with the database black-holed; the request in flight answered ${await inFlight}`);
      assert.deepEqual(exit, { code: 0, signal: null }, `a clean stop, not the deadline's exit: ${server.output.stderr.slice(-500)}`);
      assert.ok(took < SHUTDOWN_DEADLINE_MS - 5_000, `within the deadline (${Math.round(took)} ms)`);
      assert.equal(await inFlight, 503, 'the request in flight got its answer');
      assert.ok(!server.log().some((l) => l.msg === 'shutdown did not finish in time: exiting'));
    } finally {
      if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
      proxy.setMode('forward');
      await proxy.close();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
