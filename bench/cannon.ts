/**
 * One HTTP scenario under autocannon (in-process, pipelining 1, bounded connections, bounded time).
 * Connection errors, timeouts, non-2xx answers and bodies that fail `verify` all count as errors.
 */
import autocannon from 'autocannon';
import type { Measurement } from './measurement.ts';

export interface HttpScenario {
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Request bodies, used in turn (so consecutive requests may carry different tokens). */
  bodies?: readonly string[];
  /** A cheap check of each response body. */
  verify?: (body: string) => boolean;
}

export interface Load {
  connections: number;
  seconds: number;
  /** Requests per second over all connections (open loop, latency corrected for coordinated omission); unbounded when absent. */
  rate?: number;
}

export async function cannon(url: string, scenario: HttpScenario, load: Load): Promise<Measurement> {
  const bodies = scenario.bodies ?? [];
  let next = 0;
  const r = await autocannon({
    url: `${url}${scenario.path}`,
    method: scenario.method ?? 'GET',
    headers: scenario.headers ?? {},
    connections: load.connections,
    duration: load.seconds,
    pipelining: 1,
    timeout: 10,
    ...(scenario.verify ? { verifyBody: scenario.verify as (body: unknown) => boolean } : {}),
    ...(bodies.length
      ? {
          requests: [
            {
              setupRequest: (request: autocannon.Request) => ({ ...request, body: bodies[next++ % bodies.length] }),
            },
          ],
        }
      : {}),
  });
  return measurement(r);
}

/**
 * Several scenarios as one load: each connection sends them in turn (one request of each, then again), so
 * one latency histogram covers them all. Used for token traffic (client credentials, refresh,
 * introspection) under the mixed scenario.
 */
export async function cannonMix(url: string, scenarios: readonly HttpScenario[], load: Load): Promise<Measurement> {
  const next = scenarios.map(() => 0);
  const verifiers = scenarios.map((s) => s.verify ?? (() => true));
  const r = await autocannon({
    url,
    connections: load.connections,
    duration: load.seconds,
    pipelining: 1,
    timeout: 10,
    ...(load.rate ? { overallRate: load.rate } : {}),
    // Each answer must pass the check of one of the scenarios (they answer differently enough to tell).
    verifyBody: ((body: string) => verifiers.some((v) => v(body))) as (body: unknown) => boolean,
    requests: scenarios.map((scenario, i) => ({
      method: scenario.method ?? 'GET',
      path: scenario.path,
      headers: scenario.headers ?? {},
      ...(scenario.bodies?.length
        ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: scenario.bodies![next[i]!++ % scenario.bodies!.length] }) }
        : {}),
    })),
  });
  return measurement(r);
}

function measurement(r: autocannon.Result): Measurement {
  return {
    perSecond: r.requests.total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.non2xx + r.mismatches,
    operations: r.requests.total,
  };
}
