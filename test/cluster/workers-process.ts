/**
 * The real server as its own process (`node --import tsx src/main.ts`), configured only through LATCHKEY_*
 * variables, with its output captured: the cluster tests start it with several workers, and ask which
 * worker answered a request by the log's worker id (the request id they send comes back in its log line).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/paths.ts';
import { CookieClient } from '../helpers/browser.ts';
import { freePort } from '../helpers/server.ts';

export interface ServerProcess {
  /** Where it listens (its issuer too, unless LATCHKEY_ISSUER says otherwise). */
  url: string;
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  /** Its exit: the code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The JSON log lines written so far. */
  log(): LogLine[];
  /** The worker processes below it (none for a single process). */
  workerPids(): Promise<number[]>;
  /** GET with a request id of its own on a new connection: the status, and which worker answered. */
  get(path: string): Promise<{ status: number; body: string; worker: number | undefined }>;
  /** SIGTERM, then its exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export type LogLine = Record<string, unknown> & { msg?: string; worker?: number; requestId?: string };

/** This test process's environment without LATCHKEY_* or test-runner variables, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LATCHKEY_') && !k.startsWith('NODE_TEST')));
  return { ...base, ...env };
}

/** Starts the server with `env` (LATCHKEY_PORT is a free port unless given) and no more. */
export function spawnServer(env: Record<string, string>): Omit<ServerProcess, 'url'> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: projectRoot, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (output.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (output.stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const log = () => output.stdout.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
  const url = `http://localhost:${env.LATCHKEY_PORT}`;
  return {
    child,
    output,
    exited,
    log,
    async workerPids() {
      const { stdout } = await promisify(execFile)('ps', ['-o', 'pid=', '--ppid', String(child.pid)]).catch(() => ({ stdout: '' }));
      return stdout.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
    },
    async get(path) {
      const requestId = `test-${randomUUID()}`;
      const { status, body } = await freshGet(`${url}${path}`, { 'x-request-id': requestId });
      let line: LogLine | undefined;
      for (let i = 0; i < 50 && !line; i++) {
        line = log().find((l) => l.requestId === requestId && l.msg === 'request');
        if (!line) await new Promise((r) => setTimeout(r, 20));
      }
      return { status, body, worker: line?.worker };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Starts the server and waits for its banner; fails with its output when it ends first. */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const port = env.LATCHKEY_PORT ?? String(await freePort());
  const started = spawnServer({ LATCHKEY_ENV: 'test', LATCHKEY_HOST: '127.0.0.1', LATCHKEY_LOG_LEVEL: 'debug', ...env, LATCHKEY_PORT: port });
  const end = Date.now() + 60_000;
  while (!started.output.stdout.includes('Latchkey is running')) {
    if (started.child.exitCode !== null || started.child.signalCode !== null || Date.now() > end) {
      started.child.kill('SIGKILL');
      throw new Error(`the server did not start:\n${started.output.stdout}\n${started.output.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...started, url: `http://localhost:${port}` };
}

/** One GET on a connection of its own (no keep-alive), so that the cluster hands each to the next worker. */
export function freshGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** A browser that opens a new connection for every request, so consecutive pages land on different workers. */
export class FreshConnectionBrowser extends CookieClient {
  override request(url: string, init: Parameters<CookieClient['request']>[1] = {}) {
    return super.request(url, { ...init, headers: { connection: 'close', ...init.headers } });
  }
}
