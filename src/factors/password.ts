/**
 * The password factor: argon2id hashing with explicit parameters (at least OWASP's m=19 MiB, t=2, p=1),
 * a bounded number of hashes at once, and a decoy verify for unknown accounts so that the answer and its
 * timing are the same whether or not the account exists.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import argon2 from 'argon2';
import type { Config } from '../config.ts';
import { createLimiter } from '../limit.ts';
import { projectRoot } from '../paths.ts';
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

/** What a right password proves (amr pwd): the first factor of every sign-in. */
export const PASSWORD_PROOF: Omit<Proof, 'authenticatorId'> = { kind: 'password', amr: ['pwd'], category: 'knowledge', phishingResistant: false };

export function passwordProof(userId: string): Proof {
  return { ...PASSWORD_PROOF, authenticatorId: `password:${userId}` };
}

export const isPasswordProof = (p: Proof) => p.kind === PASSWORD_PROOF.kind;

/**
 * The shipped list of common and breached passwords (src/factors/common-passwords.txt: source and license
 * in its header), read once on first use. Entries are lower case.
 */
let common: ReadonlySet<string> | undefined;
export function commonPasswords(): ReadonlySet<string> {
  common ??= new Set(
    readFileSync(path.join(projectRoot, 'src', 'factors', 'common-passwords.txt'), 'utf8')
      .split('\n')
      .filter((line) => line !== '' && line !== '#' && !line.startsWith('# ')),
  );
  return common;
}

/** What a password must not be besides common: the account's own email address or name. */
export interface PasswordContext {
  email?: string | undefined;
  name?: string | null | undefined;
}

/**
 * NIST SP 800-63B: length only (8 to 256 characters, any characters, no composition rules), and not on the
 * list of common or breached passwords nor the account's own address or name. Returns a string key, or nothing.
 */
export function passwordProblem(password: string, context: PasswordContext = {}): { key: string; vars?: Record<string, unknown> } | undefined {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return { key: 'password.tooShort', vars: { min: PASSWORD_MIN } };
  if (length > PASSWORD_MAX) return { key: 'password.tooLong', vars: { max: PASSWORD_MAX } };
  const lower = password.toLowerCase();
  if (commonPasswords().has(lower)) return { key: 'password.tooCommon' };
  const email = context.email?.trim().toLowerCase();
  const own = [email, email?.split('@')[0], context.name?.trim().toLowerCase()];
  if (own.some((word) => word && word === lower.trim())) return { key: 'password.matchesAccount' };
  return undefined;
}
