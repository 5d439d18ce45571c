/**
 * Database metrics: the pool's connections in use and the requests waiting for one (knex's tarn pool,
 * which also lends the connections the hot path's prepared statements run on: store/db.ts `prepared`),
 * and how long statements take, from knex's query events and around each prepared statement.
 */
import type { Knex } from 'knex';
import { Gauge, Histogram } from 'prom-client';
import { registry } from './registry.ts';

/** The databases this process has open (tests run several servers in one process): the gauges sum them. */
const observed = new Set<Knex>();

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
}

new Gauge({
  name: 'latchkey_db_pool_connections',
  help: 'Database pool connections by state: used (lent out), free (idle), pending (requests waiting for one), creating',
  labelNames: ['state'] as const,
  registers: [registry],
  collect() {
    const sum = { used: 0, free: 0, pending: 0, creating: 0 };
    for (const knex of observed) {
      const pool = (knex.client as { pool?: TarnPool }).pool;
      if (!pool) continue;
      sum.used += pool.numUsed();
      sum.free += pool.numFree();
      sum.pending += pool.numPendingAcquires();
      sum.creating += pool.numPendingCreates();
    }
    for (const [state, value] of Object.entries(sum)) this.set({ state }, value);
  },
});

const queryDuration = new Histogram({
  name: 'latchkey_db_query_duration_seconds',
  help: 'Time a database statement took (from sending it to its answer), by path (builder: knex queries; prepared: the hot-path prepared statements) and outcome (ok, error)',
  labelNames: ['via', 'outcome'] as const,
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

/** A query that never answers (a connection torn down under it) is forgotten past this many in flight. */
const MAX_IN_FLIGHT = 10_000;

/** Follows one database's pool and queries until the returned function is called (before it closes). */
export function observeDatabase(knex: Knex): () => void {
  const started = new Map<string, number>();
  const onQuery = (query: { __knexQueryUid?: string }) => {
    if (!query.__knexQueryUid) return;
    if (started.size >= MAX_IN_FLIGHT) started.clear();
    started.set(query.__knexQueryUid, performance.now());
  };
  const settle = (outcome: 'ok' | 'error') => (_result: unknown, query: { __knexQueryUid?: string }) => {
    const at = query?.__knexQueryUid === undefined ? undefined : started.get(query.__knexQueryUid);
    if (at === undefined) return;
    started.delete(query.__knexQueryUid!);
    queryDuration.observe({ via: 'builder', outcome }, (performance.now() - at) / 1000);
  };
  const onResponse = settle('ok');
  const onError = settle('error');
  knex.on('query', onQuery).on('query-response', onResponse).on('query-error', onError);
  observed.add(knex);
  return () => {
    observed.delete(knex);
    knex.removeListener('query', onQuery).removeListener('query-response', onResponse).removeListener('query-error', onError);
  };
}

/** Times one prepared statement (store/db.ts): `return (await timedStatement(connection.query(…))).rows`. */
export async function timedStatement<T>(running: Promise<T>): Promise<T> {
  const at = performance.now();
  let outcome: 'ok' | 'error' = 'error';
  try {
    const result = await running;
    outcome = 'ok';
    return result;
  } finally {
    queryDuration.observe({ via: 'prepared', outcome }, (performance.now() - at) / 1000);
  }
}
