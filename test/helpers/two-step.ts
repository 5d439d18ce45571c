/**
 * Two-step verification from the outside: enrolling methods on the account page with the cookie-keeping
 * client, and TOTP codes computed here (RFC 6238 with node:crypto), independently of otplib.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Knex } from 'knex';
import { accountKey } from '../../src/security/attempts.ts';
import type { CookieClient, Page } from './browser.ts';
import { findForm } from './browser.ts';
import type { RelyingParty } from './rp.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const i = BASE32.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 / RFC 4226: HMAC over the 8-byte big-endian time step, dynamic truncation. */
export function totpCode(key: Buffer, epochSeconds: number, digits = 6, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1', period = 30): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(epochSeconds / period)));
  const mac = createHmac(algorithm, key).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Waits until at least `margin` seconds remain in the current 30-second step (so a code does not expire mid-test). */
export async function awaitFreshStep(margin = 8): Promise<void> {
  const into = (Date.now() / 1000) % 30;
  if (30 - into < margin) await new Promise((r) => setTimeout(r, (30 - into + 0.2) * 1000));
}

/** Waits for the next 30-second step to begin. */
export async function awaitNextStep(): Promise<void> {
  const into = (Date.now() / 1000) % 30;
  await new Promise((r) => setTimeout(r, (30 - into + 0.2) * 1000));
}

/** Posts the form with this action on `page` (hidden fields plus `fields`), following redirects. */
export function submitForm(browser: CookieClient, page: Page, action: string, fields: Record<string, string> = {}) {
  return browser.submit(page, action, fields);
}

/** The account session must exist (signInToAccount): sets the security question through the account page. */
export async function enrolQuestion(browser: CookieClient, answer = 'Rex the dog', question = 'firstPet'): Promise<Page> {
  const page = await browser.follow('/account/two-step/security-question');
  assert.equal(page.status, 200, `the question form, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
  const done = await browser.submit(page, '/account/two-step/security-question', { question, answer });
  assert.equal(done.status, 200, done.body.slice(0, 500));
  assert.match(done.url, /\/account\/security\?done=twoStep(Added|Changed)/);
  return done;
}

/** Adds an authenticator app through the account page; returns its seed and the page after it (recovery codes the first time). */
export async function enrolTotp(browser: CookieClient, label = 'Phone'): Promise<{ seed: string; page: Page; recoveryCodes: string[] }> {
  const setup = await browser.follow('/account/two-step/totp');
  assert.equal(setup.status, 200, `the app setup page, got ${setup.status} at ${setup.url}: ${setup.body.slice(0, 300)}`);
  const seed = /id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)?.[1]?.replace(/ /g, '');
  assert.ok(seed, 'the seed is shown while enrolling');
  await awaitFreshStep();
  const page = await browser.submit(setup, '/account/two-step/totp', { code: totpCode(base32Decode(seed), nowSeconds()), label });
  assert.equal(page.status, 200, page.body.slice(0, 500));
  return { seed, page, recoveryCodes: recoveryCodesOn(page) };
}

/** The recovery codes shown on a page (once). */
export function recoveryCodesOn(page: Page): string[] {
  return [...page.body.matchAll(/<li><code>([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})<\/code><\/li>/g)].map((m) => m[1]!);
}

/** The pending step id of the second-step form on a page. */
export function pendingOf(page: Page, action: string): string {
  return findForm(page.body, action).hidden.pending!;
}

/** Fixtures: methods put straight into the store (for suites about signing in, not enrolling). */
export interface StoreLike {
  authenticators: { insert(a: { userId: string; kind: string; label: string; data?: Record<string, unknown>; secret?: string; secretHash?: string }): Promise<{ id: string }> };
  codes: { replaceSet(purpose: 'recovery_code', userId: string, codes: readonly string[], ttl: number): Promise<void> };
}

/** A fresh 160-bit seed, base32. */
export function newSeed(): string {
  const bytes = Buffer.from(Array.from({ length: 20 }, () => Math.floor(Math.random() * 256)));
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

export async function addTotp(store: StoreLike, userId: string, label = 'Phone', digits = 6): Promise<{ id: string; seed: string; key: Buffer }> {
  const seed = newSeed();
  const { id } = await store.authenticators.insert({ userId, kind: 'totp', label, data: { digits, period: 30, algorithm: 'SHA1' }, secret: seed });
  return { id, seed, key: base32Decode(seed) };
}

/** A user with a password and a security question (what a new device is asked for after the password). */
export interface Person {
  id: string;
  email: string;
  password: string;
  answer: string;
}

export async function addQuestion(store: StoreLike, hash: (s: string) => Promise<string>, userId: string, answer = 'rex the dog'): Promise<{ id: string }> {
  return store.authenticators.insert({ userId, kind: 'security-question', label: 'Security question', data: { preset: 'firstPet' }, secretHash: await hash(answer) });
}

export async function addSmsPhone(store: StoreLike, userId: string, phone = '+447911123456'): Promise<{ id: string; phone: string }> {
  const { id } = await store.authenticators.insert({ userId, kind: 'sms', label: phone, data: { phone } });
  return { id, phone };
}

/** Recovery codes as the store keeps them (normalised, no dashes); returns them as shown to users. */
export async function addRecoveryCodes(store: StoreLike, userId: string, count = 10): Promise<string[]> {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const codes = Array.from({ length: count }, () => Array.from({ length: 16 }, () => alphabet[Math.floor(Math.random() * 32)]).join(''));
  await store.authenticators.insert({ userId, kind: 'recovery-code', label: 'Recovery codes', data: { count } });
  await store.codes.replaceSet('recovery_code', userId, codes, 86400 * 365);
  return codes.map((c) => c.match(/.{4}/g)!.join('-'));
}

/** A page the cookie client stopped at, or the redirect URI it was sent to. */
export type Browsed = Page & { stoppedAt?: string };

/** After a recovery code: "You have N recovery codes left", with "Continue" to the app. */
export const recoveryNotice = (page: Browsed) => !page.stoppedAt && /\/continue"/.test(page.body);

/** The sign-in left the second step: at the app, or at the recovery-codes notice or the consent page on the way there. */
export const leftSecondStep = (page: Browsed) => !!page.stoppedAt || /\/confirm"/.test(page.body) || recoveryNotice(page);

/**
 * Through the consent page when it is shown, back at the app's redirect URI with a code; the claims of the
 * ID token the app gets for it.
 */
export async function throughToApp(browser: CookieClient, page: Browsed, rp: RelyingParty, checks: Parameters<RelyingParty['callback']>[1]) {
  let p = page;
  if (recoveryNotice(p)) p = await browser.submit(p, '/continue');
  if (!p.stoppedAt && /\/confirm"/.test(p.body)) p = await browser.submit(p, '/confirm');
  const at = p.stoppedAt;
  assert.ok(at && at.startsWith(rp.redirectUri), `back at the app, got ${p.status} at ${p.url}: ${p.body.slice(0, 300)}`);
  assert.ok(new URL(at).searchParams.get('code'), `a code at the app, got ${at}`);
  return (await rp.callback(at, checks)).claims()!;
}

/** The account's shared failure counter (wrong passwords and wrong second steps), as stored. */
export async function failureCount(knex: Knex, email: string): Promise<number> {
  const row = await knex('counters').where({ key: accountKey(email) }).first('count');
  return Number(row?.count ?? 0);
}

/**
 * `n` sign-ins of one account started by `start`, four at a time: a password being checked counts as a
 * failure until it is found right, so a fifth in flight would wait out a delay (parallel-guessing.test.ts).
 */
export async function inFours<T>(n: number, start: () => Promise<T>): Promise<T[]> {
  const all: T[] = [];
  while (all.length < n) all.push(...await Promise.all(Array.from({ length: Math.min(4, n - all.length) }, start)));
  return all;
}
