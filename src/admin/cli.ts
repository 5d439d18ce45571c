#!/usr/bin/env node
/**
 * `latchkey` — administer clients, users and keys. Reads the same configuration as the server, so it acts
 * on the same database. On the embedded database, while a server runs, the command runs inside it.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { createServices } from '../services.ts';
import { adminSocketPath, callAdminSocket, serveAdminSocket, SocketBusyError, socketAlive } from './socket.ts';
import { runCommand } from './commands.ts';

let stdinText: string | undefined;
const readStdin = async () => (stdinText ??= process.stdin.isTTY ? '' : readFileSync(0, 'utf8'));

async function main(argv: string[], attempt = 0): Promise<number> {
  if (attempt > 5) {
    process.stderr.write('latchkey: the embedded database stays busy; try again\n');
    return 1;
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latchkey: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (!config.database.url) {
    const socket = adminSocketPath(config.database.dataDir);
    if (await socketAlive(socket)) {
      const needsStdin = argv.includes('--password-stdin');
      const res = await callAdminSocket(socket, argv, needsStdin ? await readStdin() : '');
      process.stdout.write(res.stdout);
      process.stderr.write(res.stderr);
      return res.code;
    }
  }
  const log = createLogger(config.log.level === 'silent' ? 'silent' : 'warn', pino.destination(2));
  const services = createServices(config, { log });
  // On the embedded database this process now holds the admin socket: it is the database's only user,
  // and another CLI started meanwhile sends its command here instead of opening the files too.
  let socket: import('node:net').Server | undefined;
  if (!config.database.url) {
    try {
      socket = await serveAdminSocket(services, adminSocketPath(config.database.dataDir));
    } catch (err) {
      await services.database.close().catch(() => {});
      if (err instanceof SocketBusyError) return main(argv, attempt + 1);
      throw err;
    }
  }
  try {
    if (argv[0] !== 'migrate' && argv[0] !== 'help' && argv.length) await services.database.migrate();
    const res = await runCommand(argv, services, { stdin: readStdin });
    process.stdout.write(res.stdout);
    process.stderr.write(res.stderr);
    return res.code;
  } catch (err) {
    process.stderr.write(`latchkey: cannot reach the database: ${(err as Error).message}\n`);
    return 1;
  } finally {
    socket?.close();
    await services.database.close().catch(() => {});
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`latchkey: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
