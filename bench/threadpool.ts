/**
 * Does argon2 starve RS256 signing? (issue 14 part 6) Both run on libuv's thread pool (argon2's native
 * worker; jose signs through WebCrypto, whose sign runs there too). `node --import tsx bench/threadpool.ts
 * [--seconds 5] [--rate 100]` runs, for each thread-pool size (4, libuv's default, and 8) and argon2
 * concurrency (the configured limit and 4), a fresh process that signs RS256 at a fixed rate alone, then
 * while argon2id verifies run flat out through the server's own hasher (factors/password.ts: the same
 * parameters and concurrency limit), and prints the signing latency p50/p99 of both. Latency is counted
 * from when a signature was due (open loop), so waiting for a pool thread shows.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import { createPasswordHasher } from '../src/factors/password.ts';
import { summarize, type Measurement } from './measurement.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '100' },
    child: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);

/** RS256 signatures of a token-sized payload, one due every 1/rate s, for `seconds`. */
async function signAtRate(key: CryptoKey): Promise<Measurement> {
  const payload = new TextEncoder().encode('x'.repeat(600));
  const latencies: number[] = [];
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < seconds * rate; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(crypto.subtle.sign('RSASSA-PKCS1-v1_5', key, payload).then(() => void latencies.push(performance.now() - due)));
  }
  await Promise.all(pending);
  return summarize(latencies, (performance.now() - started) / 1000, 0);
}

async function child(concurrency: number): Promise<void> {
  const base = loadConfig({ env: { LATCHKEY_ENV: 'test', LATCHKEY_ISSUER: 'http://127.0.0.1:9' } }).argon2;
  const hasher = createPasswordHasher({ ...base, concurrency });
  const { privateKey } = await crypto.subtle.generateKey(
    { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify'],
  );
  const hash = await hasher.hash('bench password');
  await signAtRate(privateKey); // warm-up
  const alone = await signAtRate(privateKey);
  let stop = false;
  let verifies = 0;
  const argon2 = Promise.all(Array.from({ length: concurrency * 2 }, async () => {
    while (!stop) {
      await hasher.verify(hash, 'bench password');
      verifies++;
    }
  }));
  await sleep(300);
  const t0 = performance.now();
  const before = verifies;
  const during = await signAtRate(privateKey);
  const verifiesPerSecond = (verifies - before) / ((performance.now() - t0) / 1000);
  stop = true;
  await argon2;
  process.stdout.write(`${JSON.stringify({ alone, during, verifiesPerSecond })}\n`);
}

if (values.child) {
  await child(Number(values.child));
} else {
  const configured = loadConfig({ env: { LATCHKEY_ENV: 'test', LATCHKEY_ISSUER: 'http://127.0.0.1:9' } }).argon2.concurrency;
  process.stdout.write(`RS256 signing at ${rate}/s, ${seconds} s, alone and while argon2id verifies run flat out (latency from when each signature was due)\n`);
  process.stdout.write('pool  argon2 concurrency  sign p50/p99 alone ms  sign p50/p99 during argon2 ms  argon2 verifies/s\n');
  for (const concurrency of [...new Set([configured, 4])]) {
    for (const pool of [4, 8]) {
      const out = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', String(concurrency), '--seconds', String(seconds), '--rate', String(rate)], {
        env: { ...process.env, UV_THREADPOOL_SIZE: String(pool) }, encoding: 'utf8',
      });
      if (out.status !== 0) throw new Error(out.stderr);
      const r = JSON.parse(out.stdout) as { alone: Measurement; during: Measurement; verifiesPerSecond: number };
      const pair = (m: Measurement) => `${m.p50Ms.toFixed(1)} / ${m.p99Ms.toFixed(1)}`;
      process.stdout.write(`${String(pool).padStart(4)}  ${String(concurrency).padStart(18)}  ${pair(r.alone).padStart(21)}  ${pair(r.during).padStart(29)}  ${r.verifiesPerSecond.toFixed(1).padStart(17)}\n`);
    }
  }
}
