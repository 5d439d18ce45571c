/**
 * /metrics (README, "Metrics"): never answered unless configured; the separate listener serves Prometheus
 * text; the main port's variant wants the bearer token; real requests move the right counters by the right
 * amounts with the right labels; random paths add no series. Counters belong to the process, so each
 * assertion compares a scrape before and after what it does.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createSmsSender } from '../../src/delivery/sms.ts';
import { createLogger } from '../../src/log.ts';
import { registry } from '../../src/metrics/registry.ts';
import { CookieClient } from '../helpers/browser.ts';
import { postAsClient } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';
const TOKEN = 'metrics-scraper-token-of-forty-characters!';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format, the sample lines only. */
function parse(text: string): Sample[] {
  return text.split('\n').flatMap((line) => {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) return [];
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    return [{ name: m[1]!, labels, value: Number(m[3]) }];
  });
}

/** The value of the one series with exactly these labels (0 when it does not exist yet). */
function value(samples: Sample[], name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels);
  const found = samples.filter((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value ?? 0;
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  return parse(await res.text());
}

describe('metrics', { timeout: 180_000 }, () => {
  describe('configuration', () => {
    const load = (env: Record<string, string>) => loadConfig({ env: { LATCHKEY_ENV: 'test', ...env } });

    it('ships with no listener and no token, and the listener on loopback', () => {
      const { metrics } = load({});
      assert.deepEqual({ ...metrics }, { host: '127.0.0.1' });
    });

    it('takes the port, address and token from LATCHKEY_METRICS_*', () => {
      const { metrics } = load({ LATCHKEY_METRICS_PORT: '9464', LATCHKEY_METRICS_HOST: '10.0.0.5', LATCHKEY_METRICS_TOKEN: TOKEN });
      assert.deepEqual({ ...metrics }, { port: 9464, host: '10.0.0.5', token: TOKEN });
    });

    it('refuses a short token, a bad port, and in production an example token', () => {
      assert.throws(() => load({ LATCHKEY_METRICS_TOKEN: 'short' }), /metrics\.token: must be at least 32 characters/);
      assert.throws(() => load({ LATCHKEY_METRICS_PORT: '70000' }), /metrics\.port/);
      assert.throws(() => load({ LATCHKEY_METRICS_PORT: 'http' }), /LATCHKEY_METRICS_PORT: must be a whole number/);
      assert.throws(
        () => loadConfig({ env: { LATCHKEY_ENV: 'production', LATCHKEY_METRICS_TOKEN: 'CHANGE-ME-openssl-rand-base64-32-output' } }),
        /metrics\.token: still an example value/,
      );
    });
  });

  describe('text messages', () => {
    let gateway: http.Server;
    let answer = 200;
    before(async () => {
      gateway = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(answer).end()));
      await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    });
    after(() => new Promise<void>((resolve) => gateway.close(() => resolve())));

    it('counts what the SMS provider took and what it refused or never received', async () => {
      const { port } = gateway.address() as AddressInfo;
      const config = loadConfig({ env: { LATCHKEY_ENV: 'test' }, overrides: { twoStep: { sms: { provider: 'webhook', webhook: { url: `http://127.0.0.1:${port}/send`, secret: TOKEN } } } } });
      const sms = createSmsSender(config, createLogger('silent'));
      const count = async (outcome: string) => value(parse(await registry.metrics()), 'latchkey_sms_total', { provider: 'webhook', outcome });
      const [sent, failed] = [await count('sent'), await count('failed')];
      answer = 200;
      await sms.send('+15551234567', 'code 123456');
      answer = 503;
      await assert.rejects(sms.send('+15551234567', 'code 123456'), { name: 'SmsUnavailableError' });
      gateway.closeAllConnections();
      const unreachable = createSmsSender(loadConfig({ env: { LATCHKEY_ENV: 'test' }, overrides: { twoStep: { sms: { provider: 'webhook', webhook: { url: 'http://127.0.0.1:1/send', secret: TOKEN } } } } }), createLogger('silent'));
      await assert.rejects(unreachable.send('+15551234567', 'code 123456'), { name: 'SmsUnavailableError' });
      assert.equal(await count('sent') - sent, 1);
      assert.equal(await count('failed') - failed, 2);
    });
  });

  describe('with neither metrics.port nor metrics.token', () => {
    let server: TestServer;
    before(async () => (server = await startTestServer()));
    after(() => server.stop());

    it('answers no /metrics anywhere: 404 on the main port (with or without a token), and no listener', async () => {
      assert.equal(server.config.metrics.port, undefined);
      assert.equal(server.config.metrics.host, '127.0.0.1');
      assert.equal(server.server.metricsUrl, undefined);
      for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Record<string, string>[]) {
        const res = await fetch(`${server.url}/metrics`, { headers });
        assert.equal(res.status, 404);
        assert.doesNotMatch(await res.text(), /latchkey_|process_cpu/);
      }
    });
  });

  describe('on the main port behind metrics.token', () => {
    let server: TestServer;
    before(async () => (server = await startTestServer({ config: { metrics: { token: TOKEN } } })));
    after(() => server.stop());

    it('refuses a request without the token, with another scheme, or with a wrong or longer token (401)', async () => {
      const attempts: Record<string, string>[] = [
        {},
        { authorization: 'Bearer' },
        { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` },
        { authorization: `Bearer ${TOKEN.slice(0, -1)}X` },
        { authorization: `Bearer ${TOKEN}${TOKEN}` },
        { authorization: `Bearer ${TOKEN.slice(0, 8)}` },
      ];
      for (const headers of attempts) {
        const res = await fetch(`${server.url}/metrics`, { headers });
        assert.equal(res.status, 401, JSON.stringify(headers));
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
        assert.doesNotMatch(await res.text(), /latchkey_|process_cpu/);
      }
    });

    it('serves the metrics for the right token, and opens no separate listener', async () => {
      const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, /^# TYPE latchkey_http_requests_total counter$/m);
      // Its own refused requests above were counted under the fixed route.
      assert.ok(value(parse(text), 'latchkey_http_requests_total', { method: 'GET', route: '/metrics', status: '4xx' }) >= 6);
      assert.equal(server.server.metricsUrl, undefined);
    });
  });

  describe('on a separate listener (metrics.port)', () => {
    let server: TestServer;
    let url: string;
    let rp: RelyingParty;
    let worker: RelyingParty;
    let user: { email: string; password: string };

    before(async () => {
      // One free failure: the second wrong password in a row is refused by the limits.
      server = await startTestServer({ config: { metrics: { port: 0 }, throttle: { freeFailures: 1 } } });
      url = server.server.metricsUrl!;
      user = await server.newUser('metrics');
      rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: [REDIRECT] }));
      worker = await RelyingParty.create(server.url, await server.addClient({ name: 'Worker', grantTypes: ['client_credentials'] }));
    });
    after(() => server.stop());

    it('listens on loopback and serves Prometheus text with the process metrics and event-loop lag', async () => {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      for (const name of ['latchkey_http_request_duration_seconds histogram', 'latchkey_db_pool_connections gauge', 'process_cpu_user_seconds_total counter', 'nodejs_eventloop_lag_p99_seconds gauge']) {
        assert.match(text, new RegExp(`^# TYPE ${name}$`, 'm'));
      }
      assert.equal((await fetch(url.replace(/\/metrics$/, '/'))).status, 404);
      // Not on the main port: no token is configured.
      assert.equal((await fetch(`${server.url}/metrics`)).status, 404);
    });

    it('counts a client-credentials token by grant type, its request by route template, and its statements', async () => {
      const before = await scrape(url);
      const res = await postAsClient(`${server.url}/token`, worker.client, { grant_type: 'client_credentials' });
      assert.equal(res.status, 200);
      const now = await scrape(url);
      const delta = (name: string, labels: Record<string, string>) => value(now, name, labels) - value(before, name, labels);
      assert.equal(delta('latchkey_tokens_issued_total', { grant_type: 'client_credentials', token: 'access_token' }), 1);
      assert.equal(delta('latchkey_tokens_issued_total', { grant_type: 'client_credentials', token: 'refresh_token' }), 0);
      assert.equal(delta('latchkey_http_requests_total', { method: 'POST', route: '/token', status: '2xx' }), 1);
      assert.equal(delta('latchkey_http_request_duration_seconds_count', { method: 'POST', route: '/token', status: '2xx' }), 1);
      const statements = (via: string) => delta('latchkey_db_query_duration_seconds_count', { via, outcome: 'ok' });
      assert.ok(statements('builder') + statements('prepared') >= 1, 'the token request ran statements');
    });

    it('counts a password sign-in: started and completed by acr and amr, and its code exchanged for tokens', async () => {
      const before = await scrape(url);
      const { claims } = await rp.signIn(new CookieClient(server.url), user);
      assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
      const now = await scrape(url);
      const delta = (name: string, labels: Record<string, string>) => value(now, name, labels) - value(before, name, labels);
      assert.equal(delta('latchkey_sign_ins_started_total', { acr: 'urn:latchkey:acr:1fa' }), 1);
      assert.equal(delta('latchkey_sign_ins_completed_total', { acr: 'urn:latchkey:acr:1fa', amr: 'pwd' }), 1);
      assert.equal(delta('latchkey_sign_in_failures_total', { method: 'pwd' }), 0);
      for (const token of ['access_token', 'id_token']) assert.equal(delta('latchkey_tokens_issued_total', { grant_type: 'authorization_code', token }), 1, token);
      assert.equal(delta('latchkey_http_requests_total', { method: 'GET', route: '/auth', status: '3xx' }), 1);
      assert.equal(delta('latchkey_http_requests_total', { method: 'POST', route: '/token', status: '2xx' }), 1);
      // The sign-in page, by its template: no interaction id in any label.
      const interaction = now.filter((s) => s.name === 'latchkey_http_requests_total' && s.labels.route!.startsWith('/interaction/'));
      assert.ok(interaction.length > 0);
      for (const s of interaction) assert.match(s.labels.route!, /^\/interaction\/:uid(\/[a-z-]+)*$/);
    });

    it('counts a wrong password as a failed first step, and nothing completed', async () => {
      const before = await scrape(url);
      const browser = new CookieClient(server.url);
      const page = await browser.follow((await rp.authorization()).url);
      const refused = await browser.submit(page, '/login', { email: user.email, password: 'not the password at all' });
      assert.equal(refused.status, 401);
      const now = await scrape(url);
      const delta = (name: string, labels: Record<string, string>) => value(now, name, labels) - value(before, name, labels);
      assert.equal(delta('latchkey_sign_in_failures_total', { method: 'pwd' }), 1);
      assert.equal(delta('latchkey_sign_ins_completed_total', { acr: 'urn:latchkey:acr:1fa', amr: 'pwd' }), 0);
      assert.equal(delta('latchkey_sign_ins_started_total', { acr: 'urn:latchkey:acr:1fa' }), 1);

      // Straight away again: the failure limits refuse it before the password is checked.
      const throttled = await browser.submit(page, '/login', { email: user.email, password: 'not the password either' });
      assert.equal(throttled.status, 429);
      const later = await scrape(url);
      assert.equal(value(later, 'latchkey_sign_in_refusals_total', { reason: 'throttled' }) - value(now, 'latchkey_sign_in_refusals_total', { reason: 'throttled' }), 1);
      assert.equal(value(later, 'latchkey_sign_in_failures_total', { method: 'pwd' }) - value(now, 'latchkey_sign_in_failures_total', { method: 'pwd' }), 0);
    });

    it('shows the database pool\'s connections in use and the requests waiting for one', async () => {
      const { knex } = server.server.services.database;
      const max = (knex.client as { pool: { max: number } }).pool.max;
      const held = await Promise.all(Array.from({ length: max }, () => knex.client.acquireConnection() as Promise<unknown>));
      const waiting = knex.raw('select 1').then(() => undefined); // a knex query runs once it is awaited
      try {
        await new Promise((r) => setTimeout(r, 50));
        const now = await scrape(url);
        assert.ok(value(now, 'latchkey_db_pool_connections', { state: 'used' }) >= max, `${max} connections in use`);
        assert.ok(value(now, 'latchkey_db_pool_connections', { state: 'pending' }) >= 1, 'a query waits');
      } finally {
        for (const connection of held) await knex.client.releaseConnection(connection);
      }
      await waiting;
      const after = await scrape(url);
      assert.equal(value(after, 'latchkey_db_pool_connections', { state: 'pending' }), 0);
    });

    it('keeps the route label bounded: 200 random paths add at most a few series, and no path reaches a label', async () => {
      const series = (samples: Sample[]) => new Set(samples.filter((s) => s.name === 'latchkey_http_requests_total').map((s) => JSON.stringify(s.labels)));
      const before = series(await scrape(url));
      const random: string[] = [];
      for (let i = 0; i < 200; i++) {
        const id = randomBytes(6).toString('hex');
        random.push(id);
        const path = [`/${id}`, `/interaction/${id}`, `/auth/${id}/${id}`, `/assets/${id}.css`, `/account/${id}`, `/admin/api/v1/${id}`, `/.well-known/${id}`, `/token/${id}`][i % 8]!;
        const res = await fetch(`${server.url}${path}`, { method: i % 3 ? 'GET' : 'POST', redirect: 'manual' });
        await res.body?.cancel();
      }
      const text = await (await fetch(url)).text();
      const after = series(parse(text));
      const added = [...after].filter((s) => !before.has(s));
      assert.ok(added.length <= 12, `200 random paths added ${added.length} series: ${added.join(' ')}`);
      for (const id of random) assert.ok(!text.includes(id), `the path segment ${id} reached a label`);
    });
  });
});
