/**
 * The rules of a mobile app prompt (README, "Mobile app prompts"): what one is, when one may be sent, how
 * a device answers it. A prompt is a pending step of kind `push` (store/pending-steps.ts), bound to the
 * sign-in (or the pairing, or the CIBA request) that asked for it, found by the devices through the stable
 * `promptId` in its data. Its number is sealed in the step's secret and shown only on the sign-in page.
 *
 * - Limits, all on shared counters: a pause after "This wasn't me", a cap per IP, one prompt per
 *   `resendIntervalSeconds` doubling after each prompt left unanswered or denied, `maxPer15Minutes` and
 *   `maxPerDay` per account. A new prompt replaces the account's waiting one. Nothing resets the failure
 *   counter.
 * - An approval spends one of the prompt's attempts in one conditional write before its number is
 *   checked, and counts on the account's failure counter (given back when right); a third wrong number
 *   ends the prompt. The first answer stands (one conditional write resolves it).
 * - A push message grants nothing: it names the prompt, the app fetches it over the signed API.
 */
import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.ts';
import type { PushSender } from '../delivery/push.ts';
import type { Logger } from '../log.ts';
import { FactorError, type Step } from '../factors/types.ts';
import type { Attempts } from '../security/attempts.ts';
import type { Store } from '../store/index.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { PushDevice } from '../store/push-devices.ts';
import type { User } from '../store/users.ts';
import { limitKey } from '../http/ip.ts';
import webpush from 'web-push';

export const PUSH = 'push';
/** Wrong numbers a prompt takes; the third ends it. */
export const PROMPT_ATTEMPTS = 3;
/** A device not seen for this long no longer gets prompts (it shows as signed out). */
export const DEVICE_IDLE_DAYS = 30;

/** sign-in: the second step (a number to type); test: the one that finishes a pairing; ciba: an app's back-channel request. */
export type PromptPurpose = 'sign-in' | 'test' | 'ciba';

/** Where the request for a prompt came from, as the app shows it (computed by the caller from the request). */
export interface PromptOrigin {
  ip: string;
  browser: string;
  os: string;
  /** The masked IP and, when GeoIP is configured, the country. */
  place: { ip: string; country: string | null };
  client: { id: string | null; name: string; logoUrl: string | null };
}

export interface PromptDeps {
  store: Store;
  config: Config;
  push: PushSender;
  log: Logger;
}

/** What the app gets of a prompt (docs/mobile-app-protocol.md, "A Prompt"): never the number. */
export interface PromptView {
  id: string;
  kind: PromptPurpose;
  client: PromptOrigin['client'];
  browser: string;
  os: string;
  place: PromptOrigin['place'];
  createdAt: string;
  expiresAt: string;
  bindingMessage: string | null;
  numberDigits: number | null;
}

const key = {
  paused: (userId: string) => `push:paused:${userId}`,
  ignored: (userId: string) => `push:ignored:${userId}`,
  interval: (userId: string) => `push:interval:${userId}`,
  quarter: (userId: string) => `push:15m:${userId}`,
  day: (userId: string) => `push:day:${userId}`,
  ip: (ip: string) => `push:ip:${ip}`,
};

export const newNumber = (digits: number): string => String(randomInt(0, 10 ** digits)).padStart(digits, '0');

/** The VAPID key pair to sign with, made at first use and sealed at rest. */
export const vapidKey = (store: Store) => store.pushDevices.vapidKey(() => webpush.generateVAPIDKeys());

/** A device that may answer sign-in prompts: enrolled, not signed out, seen within DEVICE_IDLE_DAYS. */
export function deviceLive(d: PushDevice, now = Date.now()): boolean {
  return !!d.authenticatorId && (d.state === 'active' || d.state === 'open-app') && now - d.lastSeenAt.getTime() < DEVICE_IDLE_DAYS * 86_400_000;
}

/**
 * Checks and counts the limits for a new sign-in or CIBA prompt to this user from this IP; throws
 * FactorError('unavailable') while prompts are paused, ('limited') when one is asked for too soon or too often.
 */
export async function takePromptQuota(deps: PromptDeps, user: User, ip: string | undefined): Promise<void> {
  const limits = deps.config.twoStep.push;
  const counters = deps.store.counters;
  const found = await counters.get([key.paused(user.id), key.ignored(user.id)]);
  const paused = found.get(key.paused(user.id));
  if (paused && paused.expiresAt.getTime() > Date.now()) throw new FactorError('unavailable', 'factors.push.paused');
  // No address for a CIBA request: it comes from the app's server, for all of its users (the account's limits hold).
  if (ip !== undefined && !(await counters.take(key.ip(limitKey(ip)), limits.maxPerIpPer15Minutes, 900))) throw new FactorError('limited', 'factors.push.tooMany');
  // Every prompt counts as unanswered until it is approved (a denial counts twice), for an hour: the wait
  // before the next one doubles for each beyond the last one, whether it was replaced, denied or expired.
  const ignored = found.get(key.ignored(user.id));
  const unanswered = ignored && ignored.expiresAt.getTime() > Date.now() ? ignored.count : 0;
  const interval = Math.min(limits.resendIntervalSeconds * 2 ** Math.min(Math.max(unanswered - 1, 0), 5), 3600);
  if (!(await counters.spaced(key.interval(user.id), interval, 3600))) throw new FactorError('limited', 'factors.push.tooSoon', { seconds: interval });
  if (!(await counters.take(key.quarter(user.id), limits.maxPer15Minutes, 900))) throw new FactorError('limited', 'factors.push.tooMany');
  if (!(await counters.take(key.day(user.id), limits.maxPerDay, 86400))) throw new FactorError('limited', 'factors.push.tooMany');
}

/** One more prompt not approved (yet): the next one waits longer (for an hour). */
async function countIgnored(deps: PromptDeps, userId: string): Promise<void> {
  await deps.store.counters.take(key.ignored(userId), 1_000_000, 3600);
}

/**
 * A new prompt's step (not yet stored): within the limits for sign-in and CIBA prompts, replacing the
 * account's waiting one. The number (sign-in only) is the step's sealed secret.
 */
export async function promptStep(deps: PromptDeps, user: User, opts: {
  purpose: PromptPurpose; origin: PromptOrigin; authenticatorId?: string | undefined; bindingMessage?: string | undefined;
  pairingId?: string | undefined; ttlSeconds?: number;
}): Promise<Step<'push'>> {
  const limits = deps.config.twoStep.push;
  if (opts.purpose !== 'test') {
    await takePromptQuota(deps, user, opts.purpose === 'ciba' ? undefined : opts.origin.ip);
    await deps.store.pending.dropWaitingOf(user.id, PUSH, 'test');
    await countIgnored(deps, user.id);
  }
  // A sign-in's number is typed from the sign-in page, a pairing's from the account page (so a phone that
  // guessed or stole the pairing code cannot finish pairing unseen); a CIBA request has its binding message.
  const digits = opts.purpose === 'ciba' ? null : limits.numberDigits;
  return {
    kind: 'push', authenticatorId: opts.authenticatorId, attempts: PROMPT_ATTEMPTS,
    ttlSeconds: opts.ttlSeconds ?? limits.promptTtlSeconds,
    secret: digits ? newNumber(digits) : undefined,
    data: {
      promptId: randomBytes(18).toString('base64url'), purpose: opts.purpose, origin: opts.origin, numberDigits: digits,
      bindingMessage: opts.bindingMessage ?? null, pairingId: opts.pairingId ?? null, createdAt: new Date().toISOString(),
    },
  };
}

/** What delivery needs of a stored prompt. */
type Stored = Pick<PendingRow, 'userId' | 'data' | 'expiresAt'>;

/** The devices a stored prompt goes to: the pairing device for a test prompt, else every live device of the user. */
export async function devicesFor(deps: PromptDeps, row: Stored): Promise<PushDevice[]> {
  const devices = await deps.store.pushDevices.listForUser(row.userId!);
  if (row.data.purpose === 'test') return devices.filter((d) => d.pairingId === row.data.pairingId && d.state === 'pairing');
  return devices.filter((d) => deviceLive(d));
}

/**
 * Sends a stored prompt to its devices that have a subscription (the others check while open). A dead
 * subscription (404/410) is dropped. Returns how many push services took it; a failure never grants anything.
 */
export async function deliver(deps: PromptDeps, row: Stored): Promise<number> {
  const subscribed = (await devicesFor(deps, row)).filter((d) => d.subscription);
  if (!subscribed.length) return 0;
  const vapid = await vapidKey(deps.store);
  // A subscription made with a VAPID key since rotated is refused by its push service (RFC 8292 `k`): such a
  // device checks while open until it subscribes again with the current key (POST /app/api/subscription).
  const devices = subscribed.filter((d) => d.vapidKeyId === vapid.id);
  if (devices.length < subscribed.length) deps.log.info({ devices: subscribed.length - devices.length }, 'prompt not pushed to devices subscribed with a retired VAPID key');
  if (!devices.length) return 0;
  const ttlSeconds = Math.max(1, Math.floor((row.expiresAt - Date.now()) / 1000));
  const payload = { type: row.data.purpose === 'test' ? 'test' : 'prompt', prompt: row.data.promptId };
  const outcomes = await Promise.all(devices.map(async (d) => {
    const outcome = await deps.push.send(d.subscription!, payload, { ttlSeconds, vapid });
    if (outcome === 'gone') await deps.store.pushDevices.dropSubscription(d.id, d.subscription!.endpoint);
    return outcome;
  }));
  const sent = outcomes.filter((o) => o === 'sent').length;
  deps.log.info({ devices: devices.length, sent, gone: outcomes.filter((o) => o === 'gone').length }, 'prompt sent');
  return sent;
}

/** Whether this device may see and answer this prompt. */
export function mayAnswer(device: PushDevice, row: PendingRow): boolean {
  // Steps of kind push without a promptId are the account page's enrolments, not prompts.
  if (row.userId !== device.userId || row.kind !== PUSH || typeof row.data.promptId !== 'string') return false;
  if (row.data.purpose === 'test') return device.state === 'pairing' && row.data.pairingId === device.pairingId;
  return deviceLive(device);
}

export function viewOf(row: PendingRow): PromptView {
  const d = row.data as { promptId: string; purpose: PromptPurpose; origin: PromptOrigin; createdAt: string; bindingMessage: string | null; numberDigits: number | null };
  return {
    id: d.promptId, kind: d.purpose, client: d.origin.client, browser: d.origin.browser, os: d.origin.os, place: d.origin.place,
    createdAt: d.createdAt, expiresAt: new Date(row.expiresAt).toISOString(), bindingMessage: d.bindingMessage, numberDigits: d.numberDigits,
  };
}

/** The live prompts this device may answer. */
export async function promptsFor(deps: PromptDeps, device: PushDevice, promptId?: string): Promise<PendingRow[]> {
  return (await deps.store.pending.waitingFor(device.userId, PUSH, promptId)).filter((row) => mayAnswer(device, row));
}

/** Why an answer was refused (the API's error codes, docs/mobile-app-protocol.md). */
export class PromptError extends Error {
  override name = 'PromptError';
  constructor(readonly code: 'number_required' | 'wrong_number' | 'prompt_ended' | 'unknown_prompt' | 'already_answered' | 'expired', readonly attemptsLeft?: number) {
    super(code);
  }
}

/** Why this device cannot answer a prompt now: unknown (or not its own), answered already, or past its time. */
async function whyNot(deps: PromptDeps, device: PushDevice, promptId: string): Promise<PromptError> {
  const found = await deps.store.pending.findPrompt(device.userId, PUSH, promptId);
  if (!found || !mayAnswer(device, found)) return new PromptError('unknown_prompt');
  if (found.status !== 'waiting') return new PromptError('already_answered');
  return new PromptError('expired');
}

/** The live prompt this device may answer, else PromptError saying why not. */
async function answerable(deps: PromptDeps, device: PushDevice, promptId: string): Promise<PendingRow> {
  const [row] = await promptsFor(deps, device, promptId);
  if (!row) throw await whyNot(deps, device, promptId);
  return row;
}

/**
 * What happens once a prompt is resolved, by purpose (CIBA hands its result to the provider). `deps` are
 * the answering app's: a settler finds what it needs of that app through them (oidc/ciba.ts: its provider).
 */
export type Settle = (row: PendingRow, status: 'approved' | 'denied', device: PushDevice, deps: PromptDeps) => Promise<void>;
const settlers = new Map<PromptPurpose, Settle>();
export const onSettled = (purpose: PromptPurpose, settle: Settle) => settlers.set(purpose, settle);

const sameNumber = (given: string, expected: string) =>
  given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));

/**
 * A device approves a prompt. Throws PromptError (refused), FactorError (the failure limits' view of a wrong
 * number) or ThrottledError (the account is locked or slowed down: nothing was checked).
 */
export async function approve(deps: PromptDeps & { attempts: Attempts }, device: PushDevice, user: User, promptId: string, number: string | undefined, ip: string): Promise<PendingRow> {
  const seen = await answerable(deps, device, promptId);
  const needsNumber = typeof seen.data.numberDigits === 'number';
  const typed = (number ?? '').replace(/[\s-]/g, '');
  if (needsNumber && !/^\d{2,8}$/.test(typed)) throw new PromptError('number_required');
  const by = device.authenticatorId ?? device.id;
  let ended = false;
  const approved = await deps.attempts.withAttempts({ email: user.email, ip }, async () => {
    // The attempt is spent before the number is looked at: parallel guesses cannot outrun the three.
    const row = await deps.store.pending.spendAttempt(user.id, PUSH, promptId);
    if (!row || !mayAnswer(device, row)) throw new FactorError('expired');
    if (needsNumber && !sameNumber(typed, row.secret ?? '')) {
      if (row.attemptsLeft <= 0) {
        ended = await deps.store.pending.resolve(row.id, user.id, 'denied', by);
        if (ended) await countIgnored(deps, user.id);
      }
      throw new FactorError('wrong_answer', 'factors.push.wrongNumber', { left: row.attemptsLeft });
    }
    if (!(await deps.store.pending.resolve(row.id, user.id, 'approved', by))) throw new FactorError('expired');
    return { ...row, status: 'approved' as const, resolvedBy: by };
  }, { resetOnSuccess: false }).catch(async (err: unknown) => {
    if (err instanceof FactorError && err.code === 'expired') throw await whyNot(deps, device, promptId);
    if (err instanceof FactorError && err.code === 'wrong_answer') {
      throw ended ? new PromptError('prompt_ended', 0) : new PromptError('wrong_number', Number(err.vars.left));
    }
    throw err;
  });
  if (!approved) throw new PromptError('already_answered');
  if (approved.data.purpose === 'test') await deps.store.pushDevices.confirm(device.id);
  // Answered: it no longer lengthens the wait before the next prompt.
  else await deps.store.counters.release(key.ignored(user.id), 0);
  await settlers.get(approved.data.purpose as PromptPurpose)?.(approved, 'approved', device, deps);
  return approved;
}

/**
 * A device denies a prompt: "Cancel" ends it; "This wasn't me" also pauses prompts to the account and
 * counts as a failure (the caller mails the user and records the event). The first answer stands.
 */
export async function deny(deps: PromptDeps & { attempts: Attempts }, device: PushDevice, user: User, promptId: string, reason: 'cancel' | 'not-me', ip: string): Promise<PendingRow> {
  const row = await answerable(deps, device, promptId);
  if (!(await deps.store.pending.resolve(row.id, user.id, 'denied', device.authenticatorId ?? device.id))) throw await whyNot(deps, device, promptId);
  // A pairing's own test prompt, said no to, does not slow the account's sign-in prompts.
  if (row.data.purpose !== 'test') await countIgnored(deps, user.id);
  if (reason === 'not-me' && row.data.purpose !== 'test') {
    // From the latest "This wasn't me": a second one extends the pause.
    await deps.store.counters.hold(key.paused(user.id), deps.config.twoStep.push.pauseAfterNotMeSeconds);
    // A failure on the account's counter, like a wrong answer (already locked or slowed: counted enough).
    await deps.attempts.withAttempts({ email: user.email, ip }, async () => false).catch(() => undefined);
  }
  const denied = { ...row, status: 'denied' as const, data: { ...row.data, deniedAs: reason } };
  await settlers.get(row.data.purpose as PromptPurpose)?.(denied, 'denied', device, deps);
  return denied;
}
