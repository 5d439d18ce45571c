/** Start: config, database, migrations, app, listen; graceful shutdown on SIGTERM/SIGINT. */
import { loadConfigOrExplain } from './config.ts';
import { startServer, StartupError } from './server.ts';

async function main(): Promise<void> {
  const config = loadConfigOrExplain();
  if (!config) process.exit(2);
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    const message = err instanceof StartupError ? err.message : `cannot start: ${(err as Error).message}`;
    process.stderr.write(`latchkey: ${message}\n`);
    process.exit(1);
  }
  const { services } = server;
  services.log.info({ issuer: config.issuer, listen: server.url, database: services.database.kind, env: config.env }, 'latchkey started');
  // Human-readable banner on stdout, outside the JSON log: the setup link is a secret and must not be logged.
  const lines = [`\n  Latchkey is running. Issuer: ${config.issuer}`, `  Discovery: ${config.issuer}/.well-known/openid-configuration`];
  if (services.database.kind === 'embedded') lines.push(`  Database: embedded, in ${config.database.dataDir}`);
  if (server.setupLink) {
    lines.push('', '  No administrator exists yet. Open this one-time link to create one:', `  ${server.setupLink}`);
  }
  process.stdout.write(`${lines.join('\n')}\n\n`);

  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) return;
    signalled = true;
    services.log.info({ signal }, 'shutting down');
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

void main();
