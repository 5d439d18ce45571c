/**
 * The embedded database belongs to one process. While the server runs on it, the CLI sends its command
 * over a Unix socket in the data directory (mode 0600, same trust as the database files) and the server
 * runs it with the same code. One JSON request per connection; the answer is JSON lines: `{"stdout": …}`
 * for output a command streams as it goes (`audit export`), then the result (`{"code", "stdout", "stderr"}`).
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
        .then((ready) => runCommand(argv, ready, { stdin: async () => stdin, stdout: streamTo(conn) }))
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

/** Sends streamed output as it comes, waiting while the CLI reads slower; fails when the CLI went away. */
function streamTo(conn: net.Socket): (text: string) => Promise<void> {
  return (text) => new Promise<void>((resolve, reject) => {
    if (conn.destroyed || !conn.writable) return reject(new Error('the CLI went away'));
    if (conn.write(`${JSON.stringify({ stdout: text })}\n`)) return resolve();
    const settle = (err?: Error) => {
      conn.off('drain', drained);
      conn.off('close', closed);
      if (err) reject(err);
      else resolve();
    };
    const drained = () => settle();
    const closed = () => settle(new Error('the CLI went away'));
    conn.once('drain', drained);
    conn.once('close', closed);
  });
}

/**
 * Runs a command in the server; `onStdout` gets what the command streams as it comes (the socket pauses
 * until a promise it returns settles).
 */
export function callAdminSocket(file: string, argv: string[], stdin: string, onStdout?: (text: string) => void | Promise<void>): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const c = net.connect(file);
    let buf = '';
    let streamed = '';
    let result: CommandResult | undefined;
    let writing: Promise<void> = Promise.resolve();
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify({ argv, stdin })}\n`));
    c.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let message: Partial<CommandResult> | undefined;
        try {
          message = JSON.parse(line) as Partial<CommandResult>;
        } catch {
          continue;
        }
        if (typeof message.code === 'number') result = message as CommandResult;
        else if (typeof message.stdout === 'string' && !onStdout) streamed += message.stdout;
        else if (typeof message.stdout === 'string') {
          const written = onStdout!(message.stdout);
          if (written) {
            // Read no more until the reader took it: the server waits in turn.
            c.pause();
            writing = writing.then(() => written).then(() => void c.resume(), (err: unknown) => {
              c.destroy();
              throw err;
            });
          }
        }
      }
    });
    c.on('close', () => {
      writing.then(() => {
        if (result) resolve({ ...result, stdout: streamed + result.stdout });
        else reject(new Error('the running server gave no answer'));
      }, reject);
    });
    c.on('error', () => {});
  });
}
