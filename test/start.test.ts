import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { projectRoot } from '../src/paths.ts';
import { CookieClient } from './helpers/browser.ts';
import { freePort } from './helpers/server.ts';

/**
 * `npm start` as a newcomer runs it, from this checkout: it builds, serves, prints the setup link; and a
 * SIGTERM to the npm process (what a process manager or `docker stop` sends) stops the server itself, so
 * nothing keeps the embedded database or the port, and the next start works.
 */

const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-start-'));

/** Ours, without LATCHKEY_* or test-runner variables, with this test's Node first on the PATH (npm runs on it). */
function env(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LATCHKEY_') && !k.startsWith('NODE_TEST')) env[k] = v;
  return {
    ...env,
    PATH: [path.dirname(process.execPath), process.env.PATH].join(path.delimiter),
    LATCHKEY_DATA_DIR: dataDir, LATCHKEY_HOST: '127.0.0.1', LATCHKEY_PORT: String(port), LATCHKEY_LOG_LEVEL: 'warn',
  };
}

interface Started {
  npm: ChildProcess;
  output: { stdout: string; stderr: string };
  /** npm's exit: its code, or the signal that ended it. 'exit', not 'close': an orphan would hold the pipes open. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function npmStart(port: number): Started {
  const npm = spawn('npm', ['start'], { cwd: projectRoot, env: env(port), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  npm.stdout!.setEncoding('utf8').on('data', (s: string) => (output.stdout += s));
  npm.stderr!.setEncoding('utf8').on('data', (s: string) => (output.stderr += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })));
  return { npm, output, exited };
}

/** Waits for the banner (the build comes first); fails at once if npm gives up. */
async function running(s: Started): Promise<void> {
  const end = Date.now() + 150_000;
  while (Date.now() < end) {
    if (s.npm.exitCode !== null || s.npm.signalCode !== null) assert.fail(`npm start ended (${s.npm.exitCode ?? s.npm.signalCode}):\n${s.output.stdout}\n${s.output.stderr}`);
    if (s.output.stdout.includes('Latchkey is running')) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`npm start did not start the server:\n${s.output.stdout}\n${s.output.stderr}`);
}

/** Every process below `pid` (POSIX `ps`): its pid and command line. */
async function descendants(pid: number): Promise<{ pid: number; args: string }[]> {
  const { stdout } = await promisify(execFile)('ps', ['-A', '-o', 'pid=', '-o', 'ppid=', '-o', 'args=']);
  const rows = stdout.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }] : [];
  });
  const below = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) {
      if (below.has(r.ppid) && !below.has(r.pid)) {
        below.add(r.pid);
        grew = true;
      }
    }
  }
  return rows.filter((r) => r.pid !== pid && below.has(r.pid));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** Every process found under npm, so that a failed run kills what it left (an orphan is no longer under npm). */
const seen = new Set<number>();

/** SIGTERM to npm: npm exits 0 once the server has shut down, and nothing it started is left, nor the port. */
async function stopAndCheck(s: Started, port: number): Promise<void> {
  const below = await descendants(s.npm.pid!);
  for (const p of below) seen.add(p.pid);
  const server = below.filter((p) => /(^|\/)node dist\/src\/main\.js$/.test(p.args));
  assert.equal(server.length, 1, `one server process under npm: ${JSON.stringify(below)}`);
  s.npm.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null }, `npm exits 0 after the server's graceful shutdown:\n${s.output.stderr}`);
  for (const p of below) assert.ok(await eventually(() => !alive(p.pid), 3_000), `${p.args} (pid ${p.pid}) still runs after npm exited`);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'nothing listens on the port any more');
}

describe('npm start', { timeout: 300_000 }, () => {
  const started: Started[] = [];
  after(async () => {
    // A failed run must not leave a server behind either.
    for (const s of started) {
      for (const p of await descendants(s.npm.pid!).catch(() => [])) seen.add(p.pid);
      if (s.npm.exitCode === null && s.npm.signalCode === null) s.npm.kill('SIGKILL');
      s.npm.stdout!.destroy();
      s.npm.stderr!.destroy();
    }
    for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  let port: number;
  let setupLink: string;

  it('builds, serves, and prints the one-time setup link', async () => {
    port = await freePort();
    const first = npmStart(port);
    started.push(first);
    await running(first);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200);
    assert.match(first.output.stdout, /No administrator exists yet/);
    setupLink = /^\s+(http:\/\/localhost:\d+\/setup\?token=\S+)$/m.exec(first.output.stdout)?.[1] ?? '';
    assert.ok(setupLink.startsWith(`http://localhost:${port}/setup?token=`), first.output.stdout);
  });

  it('the setup link creates the first administrator, and the command its last page shows works from this checkout', async () => {
    const browser = new CookieClient(`http://localhost:${port}`);
    const page = await browser.follow(setupLink);
    const done = await browser.submit(page, '/setup', { email: 'root@example.com', password: 'the first administrator' });
    assert.equal(done.status, 200);
    const code = /<pre class="command" id="command-checkout"><code>([^<]*)<\/code><\/pre>/.exec(done.body)?.[1];
    assert.ok(code, 'the page shows a command for a checkout');
    const command = code.replaceAll('&quot;', '"').replaceAll('&amp;', '&');
    // As pasted into a shell in the checkout, while the server runs (it goes through the server's admin socket).
    const run = await promisify(execFile)('sh', ['-c', command], { cwd: projectRoot, env: env(port), timeout: 120_000 });
    assert.match(run.stdout, /^client_id: +\S+$/m, run.stdout + run.stderr);
    assert.match(run.stdout, /^client_secret: +\S+$/m);
  });

  it('SIGTERM to the npm process stops the server itself: no process left, the port closed', async () => {
    await stopAndCheck(started[0]!, port);
  });

  it('a second npm start on the same data directory and port then works', async () => {
    const second = npmStart(port);
    started.push(second);
    await running(second);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.doesNotMatch(second.output.stdout, /No administrator exists yet/, 'the administrator made before the restart is there');
    await stopAndCheck(second, port);
  });
});
