/**
 * Starting and stopping one Latchkey instance: migrate, ensure signing keys, compose the app, listen,
 * start the background jobs; and a graceful stop that lets requests in flight finish.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type net from 'node:net';
import { issueSetupLink } from './admin/setup.ts';
import { adminSocketPath, serveAdminSocket, SocketBusyError } from './admin/socket.ts';
import { createApp, type App } from './app.ts';
import type { Config } from './config.ts';
import { startPurging } from './maintenance.ts';
import { observeDatabase } from './metrics/database.ts';
import { serveMetrics, type MetricsListener } from './metrics/listener.ts';
import { collectProcessMetrics } from './metrics/registry.ts';
import { ensureSigningKeys } from './oidc/keys.ts';
import { createServices, type ServiceOptions, type Services } from './services.ts';

export interface RunningServer {
  url: string;
  services: Services;
  app: App;
  http: http.Server;
  /** The separate metrics listener's /metrics URL, when this process serves one (config metrics.port). */
  metricsUrl?: string;
  setupLink: string | undefined;
  stop(): Promise<void>;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface StartOptions extends ServiceOptions {
  adminSocket?: boolean;
  /**
   * The one-time start-up work: migrations, the first signing keys, the setup link (a new link kills the
   * last one). On by default; a cluster's later workers leave it to its first (workers.ts).
   */
  prepare?: boolean;
  /** Open the metrics listener (metrics.port) here; off in a cluster's workers, whose primary serves their sum. */
  metricsListener?: boolean;
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  // The embedded database belongs to one process: take the admin socket (the lock) before opening it.
  let adminSocket: net.Server | undefined;
  let servicesReady!: (s: Services) => void;
  const ready = new Promise<Services>((resolve) => (servicesReady = resolve));
  if (!options.database && !config.database.url && options.adminSocket !== false) {
    try {
      adminSocket = await serveAdminSocket(() => ready, adminSocketPath(config.database.dataDir));
    } catch (err) {
      if (!(err instanceof SocketBusyError)) throw err;
      throw new StartupError(`another Latchkey process is already using the embedded database in ${config.database.dataDir}; stop it first, or use PostgreSQL (LATCHKEY_DATABASE_URL) to run several instances`);
    }
  }
  const services = createServices(config, options);
  servicesReady(services);
  const { log, database } = services;
  const prepare = options.prepare !== false;
  try {
    if (prepare) {
      const applied = await database.migrate({ onWaiting: (waitedSeconds) => log.warn({ waitedSeconds }, 'waiting for the migration lock: another instance is migrating (or a stuck session holds it)') });
      if (applied.length) log.info({ migrations: applied }, 'database migrated');
      const created = await ensureSigningKeys(services.store, config);
      if (created.length) log.info({ algs: created }, 'signing keys generated');
    } else {
      await database.ping();
    }
  } catch (err) {
    adminSocket?.close();
    await database.close().catch(() => {});
    throw err;
  }

  // Client lookups are reused while this server hears every change to clients (store/client-cache.ts).
  const stopFollowingClients = await services.store.clients.followChanges(database);
  let shuttingDown = false;
  const app = await createApp(services, { shuttingDown: () => shuttingDown });
  const server = http.createServer(app.koa.callback());
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  // Draining: each response not yet begun closes its connection, so a keep-alive client (a proxy's
  // connection pool) goes to another instance rather than keeping this one until closeAllConnections.
  const unanswered = new Set<http.ServerResponse>();
  server.on('request', (_req, res: http.ServerResponse) => {
    if (shuttingDown) res.shouldKeepAlive = false;
    unanswered.add(res);
    res.once('close', () => unanswered.delete(res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const metricsOn = config.metrics.port !== undefined || config.metrics.token !== undefined;
  const unobserveDatabase = metricsOn ? observeDatabase(database.knex) : () => {};
  if (metricsOn) collectProcessMetrics();
  let metrics: MetricsListener | undefined;
  if (config.metrics.port !== undefined && options.metricsListener !== false) {
    try {
      metrics = await serveMetrics(config.metrics, log);
    } catch (err) {
      server.close();
      unobserveDatabase();
      adminSocket?.close();
      await stopFollowingClients();
      await database.close().catch(() => {});
      throw new StartupError(`cannot listen for metrics on ${config.metrics.host}:${config.metrics.port}: ${(err as Error).message}`);
    }
  }
  const stopPurging = startPurging(services);
  app.providers.start(config.keys.refreshSeconds);
  const setupLink = prepare ? await issueSetupLink(services) : undefined;

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    services,
    app,
    http: server,
    ...(metrics ? { metricsUrl: metrics.url } : {}),
    setupLink,
    stop() {
      stopping ??= (async () => {
        shuttingDown = true;
        for (const res of unanswered) if (!res.headersSent) res.shouldKeepAlive = false;
        stopPurging();
        app.providers.stop();
        adminSocket?.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          setTimeout(() => server.closeAllConnections(), 10_000).unref();
        });
        await metrics?.close();
        await services.mailer.close();
        await stopFollowingClients();
        unobserveDatabase();
        await database.close();
      })();
      return stopping;
    },
  };
}
