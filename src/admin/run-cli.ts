/**
 * Runs one `latchkey` command that the command line named (cli.ts has answered help and usage errors). It
 * reads the same configuration as the server, so it acts on the same database. On the embedded database,
 * while a server runs, the command runs inside it.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { loadConfigOrExplain } from '../config.ts';
import { createLogger } from '../log.ts';
import { createServices, type Services } from '../services.ts';
import { adminSocketPath, callAdminSocket, serveAdminSocket, SocketBusyError, socketAlive } from './socket.ts';
import type { CommandName } from './command-table.ts';
import { runCommand } from './commands.ts';

let stdinText: string | undefined;
const readStdin = async () => (stdinText ??= process.stdin.isTTY ? '' : readFileSync(0, 'utf8'));

/** Writes streamed output and resolves once it is flushed, so a slow reader slows the writer; fails on EPIPE. */
function writeStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => reject(err);
    process.stdout.once('error', failed);
    process.stdout.write(text, (err) => {
      process.stdout.off('error', failed);
      if (err) reject(err);
      else resolve();
    });
  });
}

export async function runCli(argv: string[], name: CommandName, attempt = 0): Promise<number> {
  if (attempt > 5) {
    process.stderr.write('latchkey: the embedded database stays busy; try again\n');
    return 1;
  }
  const config = loadConfigOrExplain();
  if (!config) return 2;
  if (!config.database.url) {
    const socket = adminSocketPath(config.database.dataDir);
    if (await socketAlive(socket)) {
      const needsStdin = argv.includes('--password-stdin');
      let res;
      let streamed = false;
      try {
        res = await callAdminSocket(socket, argv, needsStdin ? await readStdin() : '', (text) => {
          streamed = true;
          return writeStdout(text);
        });
      } catch (err) {
        // Output already went out: running the command again would repeat it.
        if (streamed) {
          process.stderr.write(`latchkey: ${(err as Error).message}\n`);
          return 1;
        }
        // The holder went away between our check and our call (a CLI that just finished): try again.
        await new Promise((r) => setTimeout(r, 100));
        return runCli(argv, name, attempt + 1);
      }
      process.stdout.write(res.stdout);
      process.stderr.write(res.stderr);
      return res.code;
    }
  }
  const log = createLogger(config.log.level === 'silent' ? 'silent' : 'warn', pino.destination(2));
  // On the embedded database this process first takes the admin socket, then opens the database: it is
  // the database's only user, and another CLI started meanwhile sends its command here instead.
  let socket: import('node:net').Server | undefined;
  let servicesReady!: (s: Services) => void;
  const ready = new Promise<Services>((resolve) => (servicesReady = resolve));
  if (!config.database.url) {
    try {
      socket = await serveAdminSocket(() => ready, adminSocketPath(config.database.dataDir));
    } catch (err) {
      if (err instanceof SocketBusyError) return runCli(argv, name, attempt + 1);
      throw err;
    }
  }
  const services = createServices(config, { log, statementTimeout: false });
  servicesReady(services);
  try {
    if (name !== 'migrate') await services.database.migrate();
    const res = await runCommand(argv, services, { stdin: readStdin, stdout: writeStdout });
    process.stdout.write(res.stdout);
    process.stderr.write(res.stderr);
    return res.code;
  } catch (err) {
    process.stderr.write(`latchkey: cannot reach the database: ${(err as Error).message}\n`);
    return 1;
  } finally {
    // Let commands other processes sent here finish before the database closes.
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    // A mail still waiting for a retry dies with this process: closing says so on standard error.
    await services.mailer.close().catch(() => {});
    await services.database.close().catch(() => {});
  }
}
