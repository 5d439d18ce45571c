/**
 * Child process: raw argon2id verifies/s through the server's own hasher (factors/password.ts: same
 * parameters, same concurrency limit), in a fresh Node process with the server's environment. It runs
 * exactly `concurrency` verifies at a time, so the latency is the verify's own, not time spent queueing.
 *
 * argv[2]: JSON { argon2: Config['argon2'], seconds: number }. Prints one JSON line: the Measurement and the hash.
 */
import { createPasswordHasher } from '../src/factors/password.ts';
import type { Config } from '../src/config.ts';
import { loop } from './measurement.ts';

const { argon2, seconds } = JSON.parse(process.argv[2] ?? '{}') as { argon2: Config['argon2']; seconds: number };
const hasher = createPasswordHasher({
  memoryCost: argon2.memoryCost,
  timeCost: argon2.timeCost,
  parallelism: argon2.parallelism,
  concurrency: argon2.concurrency,
});
const password = 'bench password number 0';
const hash = await hasher.hash(password);
if (!(await hasher.verify(hash, password))) throw new Error('argon2 verify of a fresh hash failed');
const measurement = await loop(argon2.concurrency, seconds, async () => {
  if (!(await hasher.verify(hash, password))) throw new Error('verify returned false');
});
process.stdout.write(`${JSON.stringify({ measurement, hash })}\n`);
