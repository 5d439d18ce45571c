/**
 * Metrics with `server.workers` (README, "Metrics"): the real server as its own process with two workers on
 * a throw-away PostgreSQL database and LATCHKEY_METRICS_PORT set. The primary alone listens for metrics and
 * serves the sum of both workers' counters; which worker answered each request is read from the log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabaseUrl, TEST_DATABASE_URL } from '../helpers/db.ts';
import { freePort } from '../helpers/server.ts';
import { freshGet, startServerProcess, type ServerProcess } from './workers-process.ts';

/** The value of the series of `name` with exactly these labels in Prometheus text (0 when absent). */
function value(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('metrics with two workers on PostgreSQL', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL', timeout: 180_000 }, () => {
  let db: { url: string; drop(): Promise<void> };
  let cluster: ServerProcess;
  let metricsUrl: string;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-metrics-workers-'));

  before(async () => {
    db = await createTestDatabaseUrl();
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
    cluster = await startServerProcess({
      LATCHKEY_DATABASE_URL: db.url, LATCHKEY_WORKERS: '2', LATCHKEY_DATA_DIR: dataDir, LATCHKEY_METRICS_PORT: String(port),
    });
  });
  after(async () => {
    await cluster?.stop();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('serves, from the primary alone, the sum of both workers\' request counts', async () => {
    const route = 'method="GET",route="/healthz",status="2xx"';
    const before = value((await freshGet(metricsUrl)).body, 'latchkey_http_requests_total', route);
    const answeredBy = new Map<number, number>();
    for (let i = 0; i < 20; i++) {
      const { status, worker } = await cluster.get('/healthz');
      assert.equal(status, 200);
      assert.ok(worker !== undefined, 'the log names the worker');
      answeredBy.set(worker, (answeredBy.get(worker) ?? 0) + 1);
    }
    assert.equal(answeredBy.size, 2, `both workers answered: ${JSON.stringify([...answeredBy])}`);

    const scraped = await freshGet(metricsUrl);
    assert.equal(scraped.status, 200);
    assert.equal(value(scraped.body, 'latchkey_http_requests_total', route) - before, 20);
    assert.equal(value(scraped.body, 'latchkey_http_request_duration_seconds_count', route) - before, 20);
    // Both workers' pools and process metrics are in the sum too.
    assert.match(scraped.body, /^latchkey_db_pool_connections\{state="free"\} \d+$/m);
    assert.match(scraped.body, /^process_cpu_user_seconds_total \S+$/m);

    // One listener, the primary's: no worker opened one, and the main port does not serve /metrics.
    const listening = cluster.log().filter((l) => l.msg === 'metrics listening');
    assert.equal(listening.length, 1);
    assert.equal(listening[0]!.role, 'primary');
    assert.equal((await cluster.get('/metrics')).status, 404);
  });
});
