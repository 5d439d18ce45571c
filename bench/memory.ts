/**
 * What the embedded database's idle RSS is made of. `npm run bench:memory` (or
 * `node --import tsx bench/memory.ts [--pglite-only] [--shared-buffers 16MB] [--initial-memory MB]`)
 * opens a fresh embedded database in a temp directory (once to create it, then again as a restarted
 * server would), then prints the process's resident memory split by what the kernel says each mapping is:
 *
 * - WebAssembly memory: PGlite's linear memory (PostgreSQL's heap, shared buffers, catalogue caches),
 *   found as the anonymous mappings V8 reserves with guard regions (≥ 4 GB of address space each);
 * - V8 heap (JavaScript objects) and external/array buffers, as process.memoryUsage() reports them;
 * - code: anonymous executable mappings (V8's compiled JavaScript and WebAssembly code);
 * - files: the node binary, shared libraries and other file-backed mappings;
 * - other anonymous memory (malloc arenas, thread stacks, compilation zones).
 *
 * Without --pglite-only it then starts the whole server in this process on the same database (listening
 * on a free loopback port) and prints the same breakdown again, so the difference is Latchkey's own.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

interface Breakdown {
  rssMb: number;
  wasmMemoryMb: number;
  wasmAccessibleMb: number;
  codeMb: number;
  filesMb: number;
  otherAnonMb: number;
  mallocMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
}

/**
 * Sums /proc/self/smaps by kind of mapping (Rss). V8 maps a wasm32 memory as its accessible part
 * (read-write) directly followed by its inaccessible guard region (4 GB or more of address space), so a
 * read-write anonymous mapping followed by such a guard is WebAssembly memory.
 */
function breakdown(): Breakdown {
  const maps: { start: number; end: number; perms: string; name: string; rssKb: number }[] = [];
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) maps.push({ start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, name: head[4]!.trim(), rssKb: 0 });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && maps.length) maps.at(-1)!.rssKb = Number(rss[1]);
  }
  const kb = { wasm: 0, code: 0, files: 0, malloc: 0, anon: 0 };
  let wasmReserved = 0;
  const anonymous = (m: (typeof maps)[number]) => !m.name || m.name.startsWith('[anon');
  for (const [i, m] of maps.entries()) {
    const next = maps[i + 1];
    if (m.name === '[heap]') kb.malloc += m.rssKb;
    else if (m.name && !m.name.startsWith('[')) kb.files += m.rssKb;
    else if (m.perms.includes('x')) kb.code += m.rssKb;
    else if (anonymous(m) && m.perms.startsWith('rw') && next && anonymous(next) && next.start === m.end && next.perms === '---p' && next.end - next.start >= 4 * 1024 ** 3) {
      kb.wasm += m.rssKb;
      wasmReserved += m.end - m.start;
    } else kb.anon += m.rssKb;
  }
  const wasmReservedKb = wasmReserved / 1024;
  const m = process.memoryUsage();
  const mb = (bytes: number) => bytes / 1024 / 1024;
  const status = readFileSync('/proc/self/status', 'utf8');
  return {
    rssMb: Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]) / 1024,
    wasmMemoryMb: kb.wasm / 1024,
    wasmAccessibleMb: wasmReservedKb / 1024,
    codeMb: kb.code / 1024,
    filesMb: kb.files / 1024,
    otherAnonMb: kb.anon / 1024,
    mallocMb: kb.malloc / 1024,
    heapUsedMb: mb(m.heapUsed),
    heapTotalMb: mb(m.heapTotal),
    externalMb: mb(m.external),
    arrayBuffersMb: mb(m.arrayBuffers),
  };
}

function print(label: string, b: Breakdown): void {
  const f = (n: number) => n.toFixed(0).padStart(5);
  process.stdout.write(
    `${label}\n` +
      `  RSS                                   ${f(b.rssMb)} MB   (before a full garbage collection: ${rssBeforeGcMb.toFixed(0)} MB)\n` +
      `  WebAssembly memory (resident)         ${f(b.wasmMemoryMb)} MB   of ${b.wasmAccessibleMb.toFixed(0)} MB allocated\n` +
      `  malloc heap (brk: native allocations) ${f(b.mallocMb)} MB\n` +
      `  other anonymous (V8 heap, mmap'd …)  ${f(b.otherAnonMb)} MB   of which V8 heap ${b.heapTotalMb.toFixed(0)} MB (${b.heapUsedMb.toFixed(0)} used), external ${b.externalMb.toFixed(0)} MB, array buffers ${b.arrayBuffersMb.toFixed(0)} MB\n` +
      `  executable anonymous (compiled code)  ${f(b.codeMb)} MB\n` +
      `  file-backed (node, libraries)         ${f(b.filesMb)} MB\n`,
  );
}

/** RSS 1.5 s after the work (what the bench reports as idle), then after a full garbage collection. */
let rssBeforeGcMb = NaN;
async function settle(): Promise<void> {
  await sleep(1500);
  rssBeforeGcMb = breakdown().rssMb;
  (globalThis as { gc?: () => void }).gc?.();
  await sleep(200);
}

const PHASES = ['node', 'pglite', 'server'] as const;
type Phase = (typeof PHASES)[number];

/**
 * Each measurement in a fresh process (this script again, with --phase), so nothing of one phase, such
 * as the memory of the PGlite that created the database, stays in the next.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'pglite-only': { type: 'boolean', default: false },
      'shared-buffers': { type: 'string', default: '16MB' },
      'initial-memory': { type: 'string' },
      phase: { type: 'string' },
      dir: { type: 'string' },
      'node-flags': { type: 'string', default: '' },
    },
  });
  if (values.phase) return phase(values.phase as Phase, values.dir!, values['shared-buffers'], values['initial-memory']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'latchkey-memory-'));
  const self = fileURLToPath(import.meta.url);
  const run = (p: Phase, setup = false) => {
    const args = ['--expose-gc', ...values['node-flags'].split(' ').filter(Boolean), self, '--phase', p, '--dir', dir, '--shared-buffers', values['shared-buffers']];
    if (values['initial-memory']) args.push('--initial-memory', values['initial-memory']);
    const out = execFileSync(process.execPath, args, { env: { ...process.env, ...(setup ? { LATCHKEY_MEMORY_SETUP: '1' } : {}) }, encoding: 'utf8' });
    if (!setup) process.stdout.write(out);
  };
  try {
    const phases: Phase[] = values['pglite-only'] ? ['node', 'pglite'] : [...PHASES];
    for (const p of phases) {
      if (p !== 'node') run(p, true); // creates (initdb) or migrates the database first, in its own process
      run(p);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function phase(which: Phase, dir: string, sharedBuffers: string, initialMemory: string | undefined): Promise<void> {
  const setup = process.env.LATCHKEY_MEMORY_SETUP === '1';
  if (which === 'node') {
    await settle();
    print('node alone (this script)', breakdown());
    return;
  }
  if (which === 'pglite') {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = new PGlite({
      dataDir: path.join(dir, 'pglite'),
      startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${sharedBuffers}`],
      ...(initialMemory ? { initialMemory: Number(initialMemory) * 1024 * 1024 } : {}),
    });
    await pglite.query('select 1');
    if (!setup) {
      await settle();
      print(`PGlite alone, opening an existing database (shared_buffers=${sharedBuffers}${initialMemory ? `, initialMemory ${initialMemory} MB` : ''})`, breakdown());
    }
    await pglite.close();
    return;
  }
  // The compiled server (what `npm start` and the bench run; build it first), not src/ through tsx.
  const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src');
  const { loadConfig } = (await import(path.join(dist, 'config.js'))) as typeof import('../src/config.ts');
  const env: Record<string, string> = {
    LATCHKEY_ENV: 'test',
    LATCHKEY_HOST: '127.0.0.1',
    LATCHKEY_PORT: '0',
    LATCHKEY_ISSUER: 'http://127.0.0.1:9',
    LATCHKEY_DATA_DIR: path.join(dir, 'server'),
    LATCHKEY_LOG_LEVEL: 'warn',
    // The same keys in both processes: the setup run stores signing keys encrypted with this one.
    LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64url'),
    LATCHKEY_COOKIE_KEYS: Buffer.alloc(32, 8).toString('base64url'),
  };
  const { startServer } = (await import(path.join(dist, 'server.js'))) as typeof import('../src/server.ts');
  const server = await startServer(loadConfig({ env }), { adminSocket: false });
  if (!setup) {
    await fetch(`${server.url}/.well-known/openid-configuration`).then((r) => r.text());
    await settle();
    print('the whole server on the embedded database, restarted, after one discovery request (shared_buffers as configured in src/store/db.ts)', breakdown());
  }
  await server.stop();
  process.exit(0); // background jobs' timers
}

void main();
