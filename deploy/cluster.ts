/**
 * The load-balanced set-up on one machine, with real processes: nginx (Debian's, unprivileged, in the
 * foreground, under a run directory of its own) terminating TLS with a self-signed certificate, in front of
 * several `node dist/src/main.js` instances on loopback ports, all on one throw-away PostgreSQL database.
 * deploy/try-cluster.sh runs it for a person; test/helpers/cluster.ts for the fault tests. Both use the
 * nginx files in deploy/nginx/, as a server would.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer, serverEntry } from '../bench/build.ts';
import { childEnvironment, freePort } from '../bench/server.ts';
import { projectRoot } from '../src/paths.ts';
import { throwAwayDatabase } from '../test/helpers/db.ts';

export const NGINX = process.env.LATCHKEY_NGINX ?? '/usr/sbin/nginx';
const TEMPLATES = path.join(projectRoot, 'deploy', 'nginx');

export interface ClusterOptions {
  /** The PostgreSQL server on which the throw-away database is created. */
  serverUrl?: string;
  instances?: number;
  /** nginx's HTTPS port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** The first instance's port; the others follow it (default: free ones). */
  firstInstancePort?: number;
  /** More LATCHKEY_* variables for every instance (the shared secrets and addresses are set here). */
  env?: Record<string, string>;
  /** Compile src/ into dist/ first (default true). */
  build?: boolean;
  /** Keep the run directory (logs) after stop(). */
  keepRunDir?: boolean;
}

export interface ClusterInstance {
  readonly index: number;
  readonly port: number;
  /** Its own address, bypassing nginx. */
  readonly url: string;
  /** The current process's pid, or undefined while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** From the signal to the process's exit. */
  ms: number;
}

export interface Cluster {
  /** The public issuer, through nginx: https://localhost:<port>. */
  issuer: string;
  port: number;
  /** The self-signed certificate nginx presents (PEM); trust it to talk to the issuer. */
  certificate: string;
  certificateFile: string;
  databaseUrl: string;
  runDir: string;
  /** The variables every instance shares (secrets included): what the CLI needs to act on this set-up. */
  env: Readonly<Record<string, string>>;
  instances: readonly ClusterInstance[];
  /** The last one-time admin setup link an instance printed (each start replaces the previous one). */
  setupLink(): string | undefined;
  /** Sends `signal` to instance i and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<Exit>;
  /** Starts instance i again; resolves once it is ready (its /readyz answers 200). */
  start(i: number): Promise<void>;
  /** nginx's access log so far (one line per request: method, path, status, upstream(s) tried). */
  accessLog(): string;
  /** nginx's error log so far (why an upstream failed). */
  errorLog(): string;
  instanceLog(i: number): string;
  /** Stops every instance (SIGTERM) and nginx, drops the database, removes the run directory. */
  stop(): Promise<void>;
}

/** A self-signed certificate for localhost and 127.0.0.1 (P-256, 30 days), by openssl. */
export function selfSignedCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'tls', 'localhost.crt');
  const key = path.join(dir, 'tls', 'localhost.key');
  mkdirSync(path.dirname(cert), { recursive: true });
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '30',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  chmodSync(key, 0o600);
  return { cert, key };
}

/** Fills in the ${NAME} placeholders of a template; a placeholder without a value is an error. */
export function renderTemplate(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for \${${name}} in the nginx template`);
    return value;
  });
}

/** The nginx files for `nginx -p runDir -c nginx.conf`. */
export function writeNginxConfig(runDir: string, values: Record<string, string>): string {
  for (const dir of ['logs', 'temp']) mkdirSync(path.join(runDir, dir), { recursive: true });
  // Only the placeholders of the site file are ours; the comment block names them too, so render the lines after it.
  writeFileSync(path.join(runDir, 'latchkey.conf'), renderTemplate(readFileSync(path.join(TEMPLATES, 'latchkey.conf.template'), 'utf8').replace(/^(#[^\n]*\n)+/, ''), values));
  const main = path.join(runDir, 'nginx.conf');
  writeFileSync(main, readFileSync(path.join(TEMPLATES, 'standalone.conf.template'), 'utf8'));
  return main;
}

const PG_DEFAULT = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const count = opts.instances ?? 3;
  if (opts.build !== false) {
    const warnings = await buildServer();
    if (warnings) process.stderr.write(`latchkey cluster: the build reported type errors (dist/ was emitted anyway):\n${warnings.split('\n').slice(0, 10).join('\n')}\n`);
  }
  const runDir = mkdtempSync(path.join(tmpdir(), 'latchkey-cluster-'));
  // nginx's workers run as nobody when nginx starts as root: they must reach their temp directories.
  chmodSync(runDir, 0o755);
  const cleanups: (() => Promise<void> | void)[] = [() => { if (!opts.keepRunDir) rmSync(runDir, { recursive: true, force: true }); }];
  const undo = async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  };
  try {
    const db = await throwAwayDatabase(opts.serverUrl ?? PG_DEFAULT, 'latchkey_cluster');
    cleanups.push(() => db.drop());
    const port = opts.port ?? (await freePort());
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(opts.firstInstancePort ? opts.firstInstancePort + i : await freePort());
    const { cert, key } = selfSignedCertificate(runDir);
    const issuer = `https://localhost:${port}`;
    const env: Record<string, string> = {
      LATCHKEY_ENV: 'test',
      LATCHKEY_LOG_LEVEL: 'info',
      ...opts.env,
      LATCHKEY_HOST: '127.0.0.1',
      LATCHKEY_ISSUER: issuer,
      LATCHKEY_DATABASE_URL: db.url,
      // Every instance must hold the same secrets: the encryption key opens the signing keys and client
      // secrets sealed in the database, and a cookie signed by one instance is read by the next.
      LATCHKEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64url'),
      // nginx reaches the instances from loopback: its forwarded headers are believed, and TLS ends there.
      LATCHKEY_TRUSTED_PROXIES: '127.0.0.1,::1',
      LATCHKEY_TLS_TERMINATED_BY_PROXY: 'true',
    };

    const instances = ports.map((p, index) => new InstanceProcess(index, p, env, runDir));
    const stopInstances = async () => {
      await Promise.all(instances.map((inst) => inst.running && inst.kill('SIGTERM', 15_000)));
    };
    cleanups.push(stopInstances);
    // One after the other: the first migrates and makes the signing keys, and each start issues a setup
    // link that replaces the last, so the last instance's link is the one that works.
    for (const inst of instances) await inst.start();

    const conf = writeNginxConfig(runDir, {
      LATCHKEY_LISTEN: `127.0.0.1:${port}`,
      LATCHKEY_SERVER_NAME: 'localhost',
      LATCHKEY_TLS_CERT: cert,
      LATCHKEY_TLS_KEY: key,
      LATCHKEY_ACCESS_LOG: path.join(runDir, 'logs', 'access.log'),
      ...Object.fromEntries(ports.map((p, i) => [`LATCHKEY_UPSTREAM_${i + 1}`, `127.0.0.1:${p}`])),
    });
    const nginx = await startNginx(runDir, conf, issuer, readFileSync(cert, 'utf8'));
    cleanups.push(() => nginx.stop());

    return {
      issuer,
      port,
      certificate: readFileSync(cert, 'utf8'),
      certificateFile: cert,
      databaseUrl: db.url,
      runDir,
      env,
      instances,
      setupLink: () => instances.map((i) => i.setupLink).filter(Boolean).at(-1),
      kill: (i, signal = 'SIGKILL') => instances[i]!.kill(signal),
      start: (i) => instances[i]!.start(),
      accessLog: () => readFileSync(path.join(runDir, 'logs', 'access.log'), 'utf8'),
      errorLog: () => readOrEmpty(path.join(runDir, 'logs', 'error.log')),
      instanceLog: (i) => instances[i]!.log(),
      stop: undo,
    };
  } catch (err) {
    await undo();
    throw err;
  }
}

class InstanceProcess implements ClusterInstance {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  setupLink: string | undefined;
  readonly url: string;
  private readonly logFile: string;

  constructor(readonly index: number, readonly port: number, private readonly env: Record<string, string>, private readonly runDir: string) {
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = path.join(runDir, `instance-${index + 1}.log`);
  }

  get pid() {
    return this.running ? this.child?.pid : undefined;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async start(): Promise<void> {
    if (this.running) throw new Error(`instance ${this.index + 1} is running already`);
    const dataDir = path.join(this.runDir, `data-${this.index + 1}`);
    mkdirSync(dataDir, { recursive: true });
    const from = existsSize(this.logFile);
    const fd = openSync(this.logFile, 'a', 0o600);
    const child = spawn(process.execPath, [serverEntry], {
      cwd: projectRoot,
      env: childEnvironment({ ...this.env, LATCHKEY_PORT: String(this.port), LATCHKEY_DATA_DIR: dataDir }),
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const out = this.log().slice(from);
      if (!this.running) throw new Error(`instance ${this.index + 1} exited during start-up:\n${out.slice(-2000)}`);
      if (out.includes('Latchkey is running') && (await fetch(`${this.url}/readyz`).then((r) => r.ok, () => false))) {
        this.setupLink = /one-time link to create one:\s+(\S+)/.exec(out)?.[1];
        return;
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`instance ${this.index + 1} was not ready within 60 s:\n${out.slice(-2000)}`);
      }
      await sleep(100);
    }
  }

  async kill(signal: NodeJS.Signals, escalateAfterMs?: number): Promise<Exit> {
    if (!this.running || !this.exited) throw new Error(`instance ${this.index + 1} is not running`);
    const started = performance.now();
    this.child!.kill(signal);
    const timer = escalateAfterMs ? setTimeout(() => this.child?.kill('SIGKILL'), escalateAfterMs) : undefined;
    const exit = await this.exited;
    clearTimeout(timer);
    return { ...exit, ms: Math.round(performance.now() - started) };
  }
}

function existsSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

async function startNginx(runDir: string, conf: string, issuer: string, ca: string): Promise<{ stop(): Promise<void> }> {
  const errorLog = path.join(runDir, 'logs', 'error.log');
  const test = spawnSync(NGINX, ['-t', '-q', '-p', `${runDir}/`, '-c', conf, '-e', errorLog]);
  if (test.status !== 0) throw new Error(`nginx refused its configuration:\n${test.stderr}`);
  const child = spawn(NGINX, ['-p', `${runDir}/`, '-c', conf, '-e', errorLog], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}${readOrEmpty(errorLog)}`);
    if (await probe(`${issuer}/readyz`, ca)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not answer within 15 s: ${stderr}${readOrEmpty(errorLog)}`);
    }
    await sleep(100);
  }
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGQUIT'); // graceful: finish the requests in flight
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** GET over HTTPS trusting `ca` only (node:https: fetch's trust store is the process's). */
async function probe(url: string, ca: string): Promise<boolean> {
  const https = await import('node:https');
  return new Promise((resolve) => {
    const req = https.get(url, { ca, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}
