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
  return {
    perSecond: r.requests.total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.non2xx + r.mismatches,
    operations: r.requests.total,
  };
}
