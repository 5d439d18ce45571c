/**
 * The embedded database belongs to one process. While the server runs on it, the CLI sends its command
 * over a Unix socket in the data directory (mode 0600, same trust as the database files) and the server
 * runs it with the same code. One JSON request per connection, one JSON response.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Services } from '../services.ts';
import { runCommand, type CommandResult } from './commands.ts';

const MAX_REQUEST = 1024 * 1024;

export function adminSocketPath(dataDir: string): string {
  return path.join(dataDir, 'admin.sock');
}

/** Resolves when a server answers on the socket, false when nobody does. */
export function socketAlive(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(file)) return resolve(false);
    const c = net.connect(file);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Listens on the socket, which also makes this process the embedded database's only user: binding a
 * Unix socket is atomic, so a second process gets SocketBusyError. A stale file (nobody answers) is replaced.
 */
export async function serveAdminSocket(services: () => Promise<Services>, file: string): Promise<net.Server> {
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    return await listenOn(services, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (await socketAlive(file)) throw new SocketBusyError(file);
    if (existsSync(file)) unlinkSync(file);
    return listenOn(services, file);
  }
}

export class SocketBusyError extends Error {
  override name = 'SocketBusyError';
  constructor(file: string) {
    super(`another Latchkey process holds ${file}`);
  }
}

async function listenOn(services: () => Promise<Services>, file: string): Promise<net.Server> {
  const server = net.createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) conn.destroy();
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      let req: { argv?: unknown; stdin?: unknown };
      try {
        req = JSON.parse(buf.slice(0, nl)) as typeof req;
      } catch {
        conn.end(`${JSON.stringify({ code: 2, stdout: '', stderr: 'latchkey: bad request\n' })}\n`);
        return;
      }
      const argv = Array.isArray(req.argv) ? req.argv.map(String) : [];
      const stdin = typeof req.stdin === 'string' ? req.stdin : '';
      services()
        .then((ready) => runCommand(argv, ready, { stdin: async () => stdin }))
        .then((res) => conn.end(`${JSON.stringify(res)}\n`))
        .catch(() => conn.end(`${JSON.stringify({ code: 1, stdout: '', stderr: 'latchkey: the command failed\n' })}\n`));
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  chmodSync(file, 0o600);
  return server;
}

export function callAdminSocket(file: string, argv: string[], stdin: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const c = net.connect(file);
    let buf = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify({ argv, stdin })}\n`));
    c.on('data', (chunk: string) => (buf += chunk));
    c.on('end', () => {
      try {
        resolve(JSON.parse(buf) as CommandResult);
      } catch {
        reject(new Error('the running server gave no answer'));
      }
    });
    c.on('error', reject);
  });
}
