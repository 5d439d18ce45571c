/**
 * libuv's thread pool (UV_THREADPOOL_SIZE, 4 threads unless set) runs argon2 hashes, WebCrypto's RS256
 * signatures (jose), file reads and DNS lookups. argon2 takes at most `argon2.concurrency` threads
 * (factors/password.ts); the pool keeps two more, so a sign-in rush never leaves a token signature waiting
 * behind hashes of 20-40 ms each. Measured (bench/threadpool.ts): with concurrency 2 a pool of 4 or 8
 * signs alike; with concurrency 4 a pool of 4 made signatures wait ≈ 150 ms (p50), a pool of 8 ≈ 17 ms.
 *
 * libuv reads the variable once, when the pool first starts (the first async file, crypto or DNS call,
 * not module loading), so main.ts calls this before it starts anything; a cluster's workers inherit it
 * from the primary's environment. An operator's own UV_THREADPOOL_SIZE is left alone.
 */
import type { Config } from './config.ts';

export const SPARE_THREADS = 2;
const LIBUV_DEFAULT = 4;

/** Sets UV_THREADPOOL_SIZE in `env` when it is not set and the default is too small; returns the size in use. */
export function sizeThreadPool(config: Pick<Config, 'argon2'>, env: NodeJS.ProcessEnv = process.env): number {
  const given = Number(env.UV_THREADPOOL_SIZE);
  if (env.UV_THREADPOOL_SIZE && Number.isInteger(given) && given > 0) return given;
  const size = Math.max(LIBUV_DEFAULT, config.argon2.concurrency + SPARE_THREADS);
  if (size !== LIBUV_DEFAULT) env.UV_THREADPOOL_SIZE = String(size);
  return size;
}
