/**
 * The password factor: argon2id hashing with explicit parameters (at least OWASP's m=19 MiB, t=2, p=1),
 * a bounded number of hashes at once, and a decoy verify for unknown accounts so that the answer and its
 * timing are the same whether or not the account exists.
 */
import argon2 from 'argon2';
import type { Config } from '../config.ts';
import { createLimiter } from '../limit.ts';
import type { Proof } from './types.ts';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Verifies against `hash`, or against a decoy when there is none; false either way on mismatch. */
  verify(hash: string | null | undefined, password: string): Promise<boolean>;
}

export function createPasswordHasher(params: Config['argon2']): PasswordHasher {
  const options = {
    type: argon2.argon2id,
    memoryCost: params.memoryCost,
    timeCost: params.timeCost,
    parallelism: params.parallelism,
  } as const;
  const limit = createLimiter(params.concurrency);
  let decoy: Promise<string> | undefined;
  const decoyHash = () => (decoy ??= limit(() => argon2.hash('decoy password that never matches', options)));
  return {
    hash: (password) => limit(() => argon2.hash(password, options)),
    async verify(hash, password) {
      const target = hash ?? (await decoyHash());
      try {
        const ok = await limit(() => argon2.verify(target, password));
        return ok && !!hash;
      } catch {
        return false;
      }
    },
  };
}

export function passwordProof(userId: string): Proof {
  return { kind: 'password', authenticatorId: `password:${userId}`, amr: ['pwd'], category: 'knowledge', phishingResistant: false };
}

/** NIST SP 800-63B: length only, any characters, no composition rules. Returns a string key, or nothing. */
export function passwordProblem(password: string): { key: string; vars?: Record<string, unknown> } | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return { key: 'password.tooShort', vars: { min: PASSWORD_MIN } };
  if (length > PASSWORD_MAX) return { key: 'password.tooLong', vars: { max: PASSWORD_MAX } };
  return undefined;
}
