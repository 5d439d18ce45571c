/**
 * What Latchkey's own middleware costs per request (issue 14 part 6, target < 0.1 ms):
 * `node --import tsx bench/middleware.ts [--requests 5000] [--rounds 5] [--path /token] [--method POST]`.
 *
 * Builds the real app (createApp on a fresh embedded database) and takes its middleware list without the
 * last entry (the hand-over to oidc-provider). A request that no route answers (by default POST /token,
 * what every token request crosses before oidc-provider sees it) is then run through ever longer prefixes
 * of that list, each ending in a handler that answers `ok`, in process, with Node's own request and
 * response objects on a socket that goes nowhere. Each middleware's cost is the difference between one
 * prefix and the next; Node's HTTP parsing and socket writes are not included (the same with or without
 * middleware). CPU-bound and single-threaded: a busy machine inflates every row alike.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Koa from 'koa';
import { createApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { ensureSigningKeys } from '../src/oidc/keys.ts';
import { createServices } from '../src/services.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000' },
    path: { type: 'string', default: '/token' },
    method: { type: 'string', default: 'POST' },
    rounds: { type: 'string', default: '5' },
  },
});
const requests = Number(values.requests);

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** One request through `handler`, as Node's HTTP server would hand it over (headers of a token request). */
async function once(handler: Handler): Promise<void> {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: '127.0.0.1' });
  const req = new IncomingMessage(socket);
  req.method = values.method;
  req.url = values.path;
  req.headers = {
    host: '127.0.0.1:3000',
    'content-type': 'application/x-www-form-urlencoded',
    'content-length': '29',
    authorization: 'Basic YmVuY2g6c2VjcmV0',
    'accept-language': 'en-GB,en;q=0.9',
    'user-agent': 'autocannon',
  };
  req.push(null);
  const res = new ServerResponse(req);
  // Nothing is written anywhere: the response stays in Node's buffers and is dropped.
  await handler(req, res);
}

async function perRequestUs(middleware: readonly Koa.Middleware[]): Promise<number> {
  const koa = new Koa({ proxy: true });
  koa.silent = true;
  for (const m of middleware) koa.use(m);
  koa.use((ctx) => {
    ctx.body = 'ok';
  });
  const handler = koa.callback() as unknown as Handler;
  for (let i = 0; i < Math.min(2000, requests / 5); i++) await once(handler); // JIT warm-up
  const t0 = process.cpuUsage();
  for (let i = 0; i < requests; i++) await once(handler);
  const used = process.cpuUsage(t0);
  return (used.user + used.system) / requests;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'latchkey-middleware-'));
try {
  const config = loadConfig({
    env: {
      LATCHKEY_ENV: 'test',
      LATCHKEY_ISSUER: 'http://127.0.0.1:3000',
      LATCHKEY_DATA_DIR: dir,
      LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64url'),
      LATCHKEY_COOKIE_KEYS: Buffer.alloc(32, 2).toString('base64url'),
      // The request log's line is at debug: not written at the default level, as in production.
      LATCHKEY_LOG_LEVEL: 'info',
    },
  });
  const services = createServices(config, { log: createLogger('info') });
  await services.database.migrate();
  await ensureSigningKeys(services.store, config);
  const { koa } = await createApp(services);
  const all = koa.middleware.slice(0, -1); // without the hand-over to oidc-provider
  // Rounds interleaved, each prefix's median kept: other work on the machine hits every prefix alike.
  const rounds = Number(values.rounds);
  const samples = Array.from({ length: all.length + 1 }, () => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k <= all.length; k++) samples[k]!.push(await perRequestUs(all.slice(0, k)));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const us = samples.map(median);
  process.stdout.write(`${values.method} ${values.path} through Latchkey's middleware (${requests} requests per prefix, median of ${rounds} rounds, CPU µs per request)\n`);
  process.stdout.write(`  Koa alone, answering "ok"                          ${us[0]!.toFixed(1).padStart(7)} µs\n`);
  for (let k = 1; k <= all.length; k++) {
    const m = all[k - 1]! as Koa.Middleware & { router?: { opts?: { prefix?: string }; stack?: { path: string }[] } };
    const name = m.router ? `router (${m.router.opts?.prefix || m.router.stack?.[0]?.path || '?'}, ${m.router.stack?.length ?? 0} routes)` : m.name || '(anonymous)';
    const delta = us[k]! - us[k - 1]!;
    process.stdout.write(`  + ${name.slice(0, 47).padEnd(47)} ${us[k]!.toFixed(1).padStart(7)} µs  (${delta >= 0 ? '+' : ''}${delta.toFixed(1)})\n`);
  }
  process.stdout.write(`  Latchkey's middleware in all: ${(us[all.length]! - us[0]!).toFixed(1)} µs per request (target < 100 µs)\n`);
  await services.database.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
