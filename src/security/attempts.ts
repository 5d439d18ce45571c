/**
 * Brute-force limits, wrapped around a verify once, in the caller: `withAttempts(subject, verify)`.
 * Failures are counted per account (keyed by the normalised email, so unknown and existing accounts
 * behave alike) and per IP, in shared storage. Each attempt is counted as a failure by one conditional
 * write before its secret is checked, and given back if it was not one. Delays double after
 * `freeFailures`; after `lockAfter` consecutive failures the account waits for a password reset by email.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import type { Translate } from '../i18n.ts';
import { AppError } from '../errors.ts';
import { metrics } from '../metrics/registry.ts';
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

/** An attempt the limits refuse now: locked (until a reset by email), or to be made again after a wait. */
export class ThrottledError extends AppError {
  constructor(readonly retryAfterSeconds: number, readonly locked: boolean) {
    super(locked ? 'sign_in.locked' : 'sign_in.throttled', 429, locked ? 'locked' : 'throttled', true, { retryAfter: retryAfterSeconds });
    metrics.refused(locked);
  }

  /** The message key of the page's words for it (locales: signIn.locked, signIn.throttled) and its values. */
  get messageKey(): string {
    return this.locked ? 'signIn.locked' : 'signIn.throttled';
  }

  get vars(): Record<string, unknown> {
    return this.locked ? {} : { seconds: this.retryAfterSeconds };
  }

  /** Answers 429 with Retry-After (unless locked) and returns the words for the page. */
  respond(ctx: Context, t: Translate): string {
    ctx.status = 429;
    if (!this.locked) ctx.set('Retry-After', String(this.retryAfterSeconds));
    return t(this.messageKey, this.vars);
  }
}

export function createAttempts(counters: CountersRepository, config: Config['throttle'], now: () => number = Date.now) {
  const delayFor = (failures: number) =>
    failures < config.freeFailures ? 0 : Math.min(config.maxDelaySeconds, 2 ** (failures - config.freeFailures));
  const accountRule = { max: config.lockAfter, free: config.freeFailures, maxDelaySeconds: config.maxDelaySeconds };

  /** Why an attempt was refused, read after the refusal: locked, or how long to wait. */
  async function refusal(s: Subject): Promise<ThrottledError> {
    const acct = accountKey(s.email);
    const found = await counters.get([acct, ipKey(s.ip)]);
    const a = found.get(acct);
    if (a && a.count >= config.lockAfter) return new ThrottledError(0, true);
    const waits: number[] = [];
    if (a) waits.push(a.updatedAt.getTime() + delayFor(a.count) * 1000 - now());
    const i = found.get(ipKey(s.ip));
    if (i && i.count >= config.ipMaxFailures) waits.push(i.expiresAt.getTime() - now());
    // A refusal whose reason has passed by the time it is read (a parallel attempt given back): one second.
    return new ThrottledError(Math.max(1, Math.ceil(Math.max(0, ...waits) / 1000)), false);
  }

  /**
   * Counts the attempt as a failure before anything is checked (one conditional write per counter), or
   * throws ThrottledError when it may not be made now. However many arrive at once, on however many
   * instances, only those the limits allow get through to the check.
   */
  async function reserve(s: Subject): Promise<void> {
    const acct = accountKey(s.email);
    // Both in one statement; the address's only when the account's was counted.
    const counted = await counters.reserveBoth(
      { key: acct, ttlSeconds: config.accountWindowSeconds, rule: accountRule },
      { key: ipKey(s.ip), ttlSeconds: config.ipWindowSeconds, rule: { max: config.ipMaxFailures } },
    );
    if (!counted.first) throw await refusal(s);
    if (!counted.second) {
      await counters.release(acct, config.maxDelaySeconds);
      throw await refusal(s);
    }
  }

  /** Gives back a reserved attempt that was not a failure. */
  async function release(s: Subject): Promise<void> {
    await counters.releaseAll([{ key: accountKey(s.email), maxDelaySeconds: config.maxDelaySeconds }, { key: ipKey(s.ip), maxDelaySeconds: 0 }]);
  }

  return {
    async succeed(s: Subject): Promise<void> {
      await counters.reset([accountKey(s.email)]);
    },
    /** Clears an account's failures and lock (a password reset by email). */
    async clear(email: string): Promise<void> {
      await counters.reset([accountKey(email)]);
    },
    /**
     * Counts the attempt as a failure first (refusing it while throttled or locked), runs `verify`, and
     * settles the outcome: a false/undefined result, a FactorError for an answer that was checked and
     * refused, or an unexpected error stays a failure (the error is thrown on); a success, or a FactorError
     * for an answer that was never checked (expired, unavailable), gives the failure back.
     * `resetOnSuccess: false` keeps the earlier failures after a success that is not the end of the
     * sign-in (the password before a second step): only a completed sign-in clears them, so knowing the
     * password never buys an attacker fresh guesses at the second step.
     */
    async withAttempts<T>(s: Subject, verify: () => Promise<T | undefined | false>, opts: { resetOnSuccess?: boolean } = {}): Promise<T | undefined> {
      await reserve(s);
      let result: T | undefined | false;
      try {
        result = await verify();
      } catch (err) {
        if (err instanceof FactorError && !err.counts) await release(s);
        throw err;
      }
      if (result === undefined || result === false) return undefined;
      if (opts.resetOnSuccess === false) await release(s);
      else await Promise.all([this.succeed(s), counters.release(ipKey(s.ip), 0)]);
      return result;
    },
  };
}

export type Attempts = ReturnType<typeof createAttempts>;
