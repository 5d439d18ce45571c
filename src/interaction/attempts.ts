/**
 * Brute-force limits, wrapped around a verify once, in the caller: `withAttempts(subject, verify)`.
 * Failures are counted per account (keyed by the normalised email, so unknown and existing accounts
 * behave alike) and per IP, in shared storage with atomic increments. Delays double after
 * `freeFailures`; after `lockAfter` consecutive failures the account waits for a password reset by email.
 */
import { createHash } from 'node:crypto';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { FactorError } from '../factors/types.ts';
import type { CountersRepository } from '../store/counters.ts';
import { normalizeEmail } from '../store/users.ts';

export interface Subject {
  /** The email the attempt names (normalised inside). */
  email: string;
  ip: string;
}

export const accountKey = (email: string) => `acct:${createHash('sha256').update(normalizeEmail(email)).digest('base64url')}`;
const ipKey = (ip: string) => `ip:${ip}`;

/** Rendered by the caller with the strings signIn.locked / signIn.throttled. */
export class ThrottledError extends AppError {
  constructor(readonly retryAfterSeconds: number, readonly locked: boolean) {
    super(locked ? 'sign_in.locked' : 'sign_in.throttled', 429, locked ? 'locked' : 'throttled', true, { retryAfter: retryAfterSeconds });
  }
}

export function createAttempts(counters: CountersRepository, config: Config['throttle'], now: () => number = Date.now) {
  const delayFor = (failures: number) =>
    failures < config.freeFailures ? 0 : Math.min(config.maxDelaySeconds, 2 ** (failures - config.freeFailures));

  async function check(s: Subject): Promise<void> {
    const acct = accountKey(s.email);
    const found = await counters.get([acct, ipKey(s.ip)]);
    const a = found.get(acct);
    if (a && a.count >= config.lockAfter) throw new ThrottledError(0, true);
    const waits: number[] = [];
    if (a) waits.push(a.updatedAt.getTime() + delayFor(a.count) * 1000 - now());
    const i = found.get(ipKey(s.ip));
    if (i && i.count >= config.ipMaxFailures) waits.push(i.expiresAt.getTime() - now());
    const wait = Math.max(0, ...waits);
    if (wait > 0) throw new ThrottledError(Math.ceil(wait / 1000), false);
  }

  return {
    check,
    async fail(s: Subject): Promise<void> {
      await counters.increment(accountKey(s.email), config.accountWindowSeconds);
      await counters.increment(ipKey(s.ip), config.ipWindowSeconds);
    },
    async succeed(s: Subject): Promise<void> {
      await counters.reset([accountKey(s.email)]);
    },
    /** Clears an account's failures and lock (a password reset by email). */
    async clear(email: string): Promise<void> {
      await counters.reset([accountKey(email)]);
    },
    /**
     * Refuses while throttled, runs `verify`, and counts the outcome: a false/undefined result, or a
     * FactorError for an answer that was checked and refused, is a failure (the error is thrown on).
     * `resetOnSuccess: false` keeps the count after a success that is not the end of the sign-in (the
     * password before a second step): only a completed sign-in clears it, so knowing the password never
     * buys an attacker fresh guesses at the second step.
     */
    async withAttempts<T>(s: Subject, verify: () => Promise<T | undefined | false>, opts: { resetOnSuccess?: boolean } = {}): Promise<T | undefined> {
      await check(s);
      let result: T | undefined | false;
      try {
        result = await verify();
      } catch (err) {
        if (err instanceof FactorError && err.counts) await this.fail(s);
        throw err;
      }
      if (result === undefined || result === false) {
        await this.fail(s);
        return undefined;
      }
      if (opts.resetOnSuccess !== false) await this.succeed(s);
      return result;
    },
  };
}

export type Attempts = ReturnType<typeof createAttempts>;
