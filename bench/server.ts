/**
 * The server under test as a child process (`node dist/src/main.js`), so its memory and CPU are its own and
 * not the load generator's. Configured only through LATCHKEY_* variables, on 127.0.0.1. With several
 * workers (LATCHKEY_WORKERS) the server is the primary and its worker processes: memory and CPU are theirs
 * together.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, closeSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../src/paths.ts';
import { serverEntry } from './build.ts';
import { readMemory, resetPeak, type Memory } from './proc.ts';

export interface ServerProcess {
  url: string;
  pid: number;
  /** The primary and its workers (just `pid` for a single process). */
  pids(): number[];
  /** Summed over pids(): RSS now, and the sum of each process's peak. */
  memory(): Memory;
  /** Starts a new peak-RSS window (false when the kernel does not allow it). */
  resetPeak(): boolean;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

export { freePort } from '../test/helpers/server.ts';

/**
 * The server's configuration: env `test` (production's code paths, templates cached; production itself
 * refuses the embedded database), fresh secrets, loopback only. The seeding step reads the same variables.
 */
export function serverEnvironment(database: Record<string, string>, port: number, configFile?: string): Record<string, string> {
  return {
    ...(configFile ? { LATCHKEY_CONFIG: configFile } : {}),
    LATCHKEY_ENV: 'test',
    LATCHKEY_HOST: '127.0.0.1',
    LATCHKEY_PORT: String(port),
    LATCHKEY_ISSUER: `http://127.0.0.1:${port}`,
    LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
    LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
    ...database,
  };
}

/** The parent's environment without any LATCHKEY_* variable, plus `env`. */
export function childEnvironment(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LATCHKEY_')));
  return { ...base, ...env };
}

export async function startServerProcess(opts: { env: Record<string, string>; workDir: string; cpuProfDir?: string | undefined }): Promise<ServerProcess> {
  const logFile = path.join(opts.workDir, 'server.log');
  const fd = openSync(logFile, 'a');
  const flags = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProfDir)}`] : [];
  const child = spawn(process.execPath, [...flags, serverEntry], {
    cwd: projectRoot,
    env: childEnvironment(opts.env),
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  const url = opts.env.LATCHKEY_ISSUER!;
  const logTail = (lines = 20) => readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (gone) throw new Error(`the server exited during start-up:\n${logTail()}`);
    // The banner comes once every worker listens; /readyz alone would answer as soon as the first does.
    const ready = readFileSync(logFile, 'utf8').includes('Latchkey is running') && await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not become ready within 60 s:\n${logTail()}`);
    }
    await sleep(100);
  }

  const pid = child.pid!;
  const pids = () => [pid, ...childrenOf(pid)];
  return {
    url,
    pid,
    pids,
    memory: () => pids().map(readMemory).reduce((a, b) => ({ rssMb: a.rssMb + b.rssMb, peakMb: a.peakMb + b.peakMb })),
    resetPeak: () => pids().map(resetPeak).every(Boolean),
    logTail,
    async stop() {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The child processes of `pid` (Linux: the main thread forks them, so its task lists them). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
