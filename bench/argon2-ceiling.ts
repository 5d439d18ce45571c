/** Runs argon2-probe.ts in its own process, with the server's environment, and reads its measurement. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Config } from '../src/config.ts';
import type { Measurement } from './measurement.ts';
import { childEnvironment } from './server.ts';

/** Whether a PHC string ($argon2id$v=19$m=…,p=…,t=…$…) was made with exactly these argon2id parameters. */
export function usesParameters(hash: string, params: Config['argon2']): boolean {
  const [, type, , list] = hash.split('$');
  const found = Object.fromEntries((list ?? '').split(',').map((kv) => kv.split('=')));
  return type === 'argon2id' && found.m === String(params.memoryCost) && found.t === String(params.timeCost) && found.p === String(params.parallelism);
}

export async function argon2Ceiling(params: Config['argon2'], seconds: number, env: Record<string, string>): Promise<Measurement> {
  const probe = path.join(import.meta.dirname, 'argon2-probe.ts');
  const { stdout } = await promisify(execFile)(process.execPath, [probe, JSON.stringify({ argon2: params, seconds })], {
    env: childEnvironment(env),
  });
  const { measurement, hash } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { measurement: Measurement; hash: string };
  if (!usesParameters(hash, params)) throw new Error(`the probe hashed with other parameters: ${hash.slice(0, 40)}`);
  return measurement;
}
