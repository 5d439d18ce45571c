/**
 * Start: config, database, migrations, app, listen; graceful shutdown on SIGTERM/SIGINT. With
 * `server.workers` above 1 this process becomes the primary of a cluster (workers.ts) and each worker
 * starts here again, serving as a single process does.
 */
import { loadConfigOrExplain, type Config } from './config.ts';
import { createLogger } from './log.ts';
import { sizeThreadPool } from './threadpool.ts';
import { runPrimary, workerCount, workerRole, type WorkerRole } from './workers.ts';

async function main(): Promise<void> {
  const config = loadConfigOrExplain();
  if (!config) process.exit(2);
  sizeThreadPool(config); // before anything uses libuv's pool; workers inherit it (threadpool.ts)
  const worker = workerRole();
  const count = workerCount(config);
  if (!worker && count > 1) {
    runPrimary(config, count, (setupLink) => process.stdout.write(banner(config, { setupLink, workers: count })));
    return;
  }
  await serve(config, worker);
}

/** One server in this process: alone, or as one of a cluster's workers. */
async function serve(config: Config, worker: WorkerRole | undefined): Promise<void> {
  // Loaded here, not at the top: a cluster's primary serves nothing and stays small without it.
  // A worker's metrics go to the primary, which serves the cluster's sum on the metrics listener (workers.ts).
  if (worker && config.metrics.port !== undefined) (await import('./metrics/listener.ts')).answerPrimaryWithMetrics();
  const { startServer, StartupError } = await import('./server.ts');
  let server;
  try {
    server = await startServer(config, worker ? { log: createLogger(config.log.level).child({ worker: worker.id }), prepare: worker.prepare, metricsListener: false } : {});
  } catch (err) {
    const message = err instanceof StartupError ? err.message : `cannot start: ${(err as Error).message}`;
    process.stderr.write(`latchkey: ${message}\n`);
    process.exit(1);
  }
  const { services } = server;
  services.log.info({ issuer: config.issuer, listen: server.url, database: services.database.kind, env: config.env }, 'latchkey started');
  if (config.server.workers === 'auto' && services.database.kind === 'embedded') {
    services.log.warn({ workers: 1 }, 'server.workers is auto, but the embedded database belongs to one process: running one (use PostgreSQL for more)');
  }
  if (worker) worker.ready(server.setupLink);
  else process.stdout.write(banner(config, { embedded: services.database.kind === 'embedded', setupLink: server.setupLink, workers: 1 }));

  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    services.log.info({ signal }, 'shutting down');
    // Whatever a stop waits on (a database whose packets go nowhere, a mail server), it ends by then.
    setTimeout(() => {
      services.log.error({ deadlineSeconds: SHUTDOWN_DEADLINE_MS / 1000 }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        services.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/**
 * The longest a SIGTERM may take: requests drain for up to 10 s (server.ts), mail in flight for 5 s
 * (delivery/mail.ts), the database's connections for a few more. A process manager's own limit (systemd's
 * TimeoutStopSec, 90 s by default; Docker's 10 s) should not be shorter than what the deployment needs.
 */
const SHUTDOWN_DEADLINE_MS = 30_000;

/** Human-readable banner on stdout, outside the JSON log: the setup link is a secret and must not be logged. */
function banner(config: Config, at: { embedded?: boolean; setupLink: string | undefined; workers: number }): string {
  const lines = [`\n  Latchkey is running. Issuer: ${config.issuer}`, `  Discovery: ${config.issuer}/.well-known/openid-configuration`];
  if (at.embedded) lines.push(`  Database: embedded, in ${config.database.dataDir}`);
  if (at.workers > 1) lines.push(`  Workers: ${at.workers} processes`);
  if (at.setupLink) {
    lines.push('', '  No administrator exists yet. Open this one-time link to create one:', `  ${at.setupLink}`);
  }
  return `${lines.join('\n')}\n\n`;
}

void main();
