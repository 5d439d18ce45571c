/**
 * Several processes serving one port (`server.workers`, node:cluster), on PostgreSQL: one event loop uses
 * about one core, so a server with more cores runs a worker per core. Everything workers share lives in the
 * database, as for several instances behind a load balancer.
 *
 * The primary serves no requests itself and opens no database (only the metrics listener, with the sum of
 * its workers' metrics, when `metrics.port` is set): it starts the first worker, which alone does the
 * one-time start-up work (migrations, the first signing keys, the setup link; server.ts `prepare`), then
 * the others. It restarts a worker that dies (after a delay that grows while crashes repeat), and stops
 * them all on SIGTERM or SIGINT, each draining its requests as a single process does. A worker that cannot
 * start (the database is down) stops the whole cluster with its status: retrying would not help, and the
 * process manager above sees the failure as it would for a single process.
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import type { Config } from './config.ts';
import { createLogger } from './log.ts';

/** Worker processes to run: `auto` is one per core on PostgreSQL and one on the embedded database. */
export function workerCount(config: Config): number {
  const { workers } = config.server;
  if (workers !== 'auto') return workers;
  return config.database.url ? Math.min(64, os.availableParallelism()) : 1;
}

/** This process as a cluster's worker: its id for the log, and whether it does the one-time work. */
export interface WorkerRole {
  id: number;
  prepare: boolean;
  /** Tells the primary this worker listens; the setup link travels with the first one's message. */
  ready(setupLink: string | undefined): void;
}

/** What the primary learns from its workers. */
interface ReadyMessage {
  latchkey: 'ready';
  setupLink?: string;
}

function isReady(message: unknown): message is ReadyMessage {
  return typeof message === 'object' && message !== null && (message as { latchkey?: unknown }).latchkey === 'ready';
}

/** The role of this process when it is a cluster's worker, otherwise undefined. */
export function workerRole(): WorkerRole | undefined {
  const worker = cluster.worker;
  if (!worker) return undefined;
  return {
    id: worker.id,
    // Ids are never reused, so a worker restarted in the first one's place does not redo the work.
    prepare: worker.id === 1,
    ready(setupLink) {
      const message: ReadyMessage = { latchkey: 'ready', ...(setupLink ? { setupLink } : {}) };
      process.send?.(message);
    },
  };
}

/** Unexpected exits within this window make the next restart wait longer. */
const CRASH_WINDOW_MS = 60_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** Longer than a worker's own drain (server.ts closes lingering connections after 10 s). */
const SHUTDOWN_GRACE_MS = 20_000;

/**
 * Runs the primary: starts `count` workers, restarts the ones that die, and on SIGTERM/SIGINT stops them
 * all and exits 0 (1 when a worker did not stop cleanly). `announce` runs once every worker listens.
 */
export function runPrimary(config: Config, count: number, announce: (setupLink: string | undefined) => void): void {
  const log = createLogger(config.log.level).child({ role: 'primary' });
  const live = new Set<Worker>();
  const restarts = new Set<NodeJS.Timeout>();
  const crashes: number[] = [];
  let stopping = false;

  /** Forks one worker; resolves with its ready message, and handles its exit whenever it comes. */
  const fork = () => new Promise<ReadyMessage>((resolve) => {
    const worker = cluster.fork();
    let ready = false;
    live.add(worker);
    // A message to a worker that has just died (a metrics scrape, metrics/listener.ts) fails with EPIPE as an
    // 'error' event: unhandled, it would end the primary and with it every worker.
    worker.on('error', (err: Error) => log.warn({ worker: worker.id, err: err.message }, 'worker channel error'));
    worker.on('message', (message: unknown) => {
      if (!isReady(message) || ready) return;
      ready = true;
      resolve(message);
    });
    worker.once('exit', (code, signal) => {
      live.delete(worker);
      if (stopping) return;
      const status = signal ?? `code ${code}`;
      if (!ready) return failed(worker.id, status, code);
      const delay = restartDelay();
      log.error({ worker: worker.id, pid: worker.process.pid, exit: status, restartInMs: delay }, 'worker died; starting another');
      const timer = setTimeout(() => {
        restarts.delete(timer);
        void fork().then(() => log.info({ workers: live.size }, 'worker replaced'));
      }, delay);
      restarts.add(timer);
    });
  });

  const restartDelay = () => {
    const now = Date.now();
    while (crashes.length && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
    crashes.push(now);
    return Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** (crashes.length - 1));
  };

  /** A worker that never listened: its own message is on stderr; stop the rest and exit with its status. */
  const failed = (id: number, status: string, code: number | null) => {
    process.stderr.write(`latchkey: worker ${id} could not start (${status}); stopping\n`);
    void stopAll().then(() => process.exit(code || 1));
  };

  /** SIGTERM to every worker, which drains and exits 0; true when all did (one still starting just ends). */
  const stopAll = async (): Promise<boolean> => {
    stopping = true;
    for (const timer of restarts) clearTimeout(timer);
    const exits = [...live].map((w) => new Promise<boolean>((resolve) => {
      w.once('exit', (code, signal) => resolve(code === 0 || signal === 'SIGTERM'));
      w.process.kill('SIGTERM');
    }));
    const killer = setTimeout(() => {
      log.error({ workers: [...live].map((w) => w.id) }, 'workers did not stop in time; killing them');
      for (const w of live) w.process.kill('SIGKILL');
    }, SHUTDOWN_GRACE_MS);
    const clean = (await Promise.all(exits)).every(Boolean);
    clearTimeout(killer);
    return clean;
  };

  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    log.info({ signal, workers: live.size }, 'shutting down');
    void stopAll().then((clean) => process.exit(clean ? 0 : 1));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  void (async () => {
    // The metrics listener first: a port that is taken stops the cluster before any worker starts.
    if (config.metrics.port !== undefined) {
      const { serveClusterMetrics } = await import('./metrics/listener.ts');
      try {
        await serveClusterMetrics(config.metrics, log);
      } catch (err) {
        process.stderr.write(`latchkey: cannot listen for metrics on ${config.metrics.host}:${config.metrics.port}: ${(err as Error).message}\n`);
        process.exit(1);
      }
    }
    // The first worker migrates and issues the setup link before any other opens the database.
    const first = await fork();
    await Promise.all(Array.from({ length: count - 1 }, fork));
    if (stopping) return;
    log.info({ workers: count }, 'all workers started');
    announce(first.setupLink);
  })();
}
