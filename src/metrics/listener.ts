/**
 * The separate metrics listener (`metrics.port` on `metrics.host`, loopback by default): Prometheus text
 * at /metrics, 404 for anything else. A single process serves its own registry; a cluster's primary
 * (workers.ts) serves the sum of its workers' (prom-client's AggregatorRegistry asks each over the
 * cluster's IPC channel), and the workers open no listener of their own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { collectProcessMetrics, registry } from './registry.ts';

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

interface Source {
  contentType: string;
  metrics(): Promise<string>;
}

async function listen(config: Config['metrics'], source: Source, log: Logger): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    source.metrics().then(
      (text) => res.writeHead(200, { 'content-type': source.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log.warn({ err: (err as Error).message }, 'metrics could not be gathered');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log.info({ metrics: `http://${host}:${address.port}/metrics` }, 'metrics listening');
  return {
    url: `http://${host}:${address.port}/metrics`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** This process's own metrics on the metrics listener. */
export function serveMetrics(config: Config['metrics'], log: Logger): Promise<MetricsListener> {
  collectProcessMetrics();
  return listen(config, registry, log);
}

/** A cluster primary's listener: the sum of every worker's metrics, gathered at each scrape. */
export function serveClusterMetrics(config: Config['metrics'], log: Logger): Promise<MetricsListener> {
  const aggregator = new AggregatorRegistry();
  return listen(config, { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() }, log);
}

/**
 * In a cluster's worker: answer the primary's requests with this worker's registry. prom-client installs
 * the worker's IPC listener when an AggregatorRegistry is made, hence the one made and dropped here.
 */
export function answerPrimaryWithMetrics(): void {
  collectProcessMetrics();
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}
