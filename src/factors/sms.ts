/**
 * A code by text message. The number is validated as E.164 (libphonenumber-js) and confirmed by a code at
 * enrolment. A code is 6 random digits, bound to one sign-in (or enrolment), works for
 * `twoStep.sms.codeTtlSeconds` (5 minutes by default, never more than 10), is kept only as a keyed hash and
 * is spent by the answer that matches it. Codes to one account: one per `resendIntervalSeconds`, at most
 * `maxPerHour` an hour; asking again never resets the failure counter. SMS is a restricted method (NIST
 * SP 800-63B): never the default when the user has another. A provider failure is `unavailable`: the page
 * says so and offers another method; it never lets a sign-in through.
 */
import { z } from 'zod';
import { enrolled, formInput, OWNED_METHOD, pendingAuthenticator } from './common.ts';
import { maskPhone, SmsUnavailableError } from '../delivery/sms.ts';
import { codeHasher, randomDigits } from './codes.ts';
import { FactorError, type Factor, type FactorContext, type Pending, type Step } from './types.ts';
import { asciiDigits } from '../text.ts';

export const CODE_DIGITS = 6;
const ATTEMPTS = 3;

const input = z.object({
  phone: z.string().max(100).optional(),
  code: z.string().max(100).optional(),
  /** While adding a phone: "Send a new code" to the number given. */
  resend: z.literal('1').optional(),
}).loose();

export interface SmsInput {
  phone?: string | undefined;
  code?: string | undefined;
  resend?: '1' | undefined;
}

/** Kinds of number that cannot take a text message (libphonenumber-js's number types). */
const NOT_MOBILE = new Set(['FIXED_LINE', 'TOLL_FREE', 'PREMIUM_RATE', 'SHARED_COST', 'UAN', 'VOICEMAIL', 'PAGER']);

/**
 * "+44 7911 123456", "0044 7911…" -> "+447911123456" (E.164); undefined unless it is a valid number in
 * international form that can take a text message.
 */
export async function toE164(value: string): Promise<string | undefined> {
  const text = value.trim().replace(/^00/, '+');
  if (!text.startsWith('+') || text.length > 40) return undefined;
  // Loaded when a number is first entered, not at start-up (its metadata of every country weighs about 6 MB).
  const { parsePhoneNumberFromString } = await import('libphonenumber-js/max');
  const parsed = parsePhoneNumberFromString(text);
  if (!parsed?.isValid()) return undefined;
  const type = parsed.getType();
  return type && NOT_MOBILE.has(type) ? undefined : parsed.number;
}

function cleanCode(code: string | undefined): string {
  const cleaned = asciiDigits(code ?? '').replace(/[\s-]/g, '');
  if (!cleaned) throw new FactorError('invalid_input', 'factors.sms.codeRequired');
  if (!/^\d{6}$/.test(cleaned)) throw new FactorError('invalid_input', 'factors.sms.codeShape', { digits: CODE_DIGITS });
  return cleaned;
}

/** The hash of a code is bound to the phone it went to and the moment it was made. */
const context = (phone: string, nonce: string) => `sms:${phone}:${nonce}`;

/**
 * Sends a new code to `phone` for `userId`, within the resend limits; the pending step's data. Throws
 * FactorError('limited') when asked too soon or too often, ('unavailable') when the provider fails.
 */
async function sendCode(ctx: FactorContext, userId: string, phone: string): Promise<Record<string, unknown>> {
  const { sms } = ctx.config.twoStep;
  const counters = ctx.store.counters;
  if (!(await counters.take(`sms:interval:${userId}`, 1, sms.resendIntervalSeconds))) {
    throw new FactorError('limited', 'factors.sms.tooSoon', { seconds: sms.resendIntervalSeconds });
  }
  if (!(await counters.take(`sms:hour:${userId}`, sms.maxPerHour, 3600))) {
    throw new FactorError('limited', 'factors.sms.tooMany');
  }
  const code = randomDigits(CODE_DIGITS);
  const nonce = randomDigits(12);
  const host = new URL(ctx.config.issuer).hostname;
  // The last line is the WebOTP format, so a phone's browser can offer the code for this site only.
  const text = `${code} is your ${ctx.config.productName} verification code. Don't share it with anyone.\n\n@${host} #${code}`;
  try {
    await ctx.sms.send(phone, text);
  } catch (err) {
    if (err instanceof SmsUnavailableError) throw new FactorError('unavailable', 'factors.sms.providerDown');
    throw err;
  }
  return { phone, nonce, codeHash: codeHasher(ctx.config.secrets.encryptionKey).hash(code, context(phone, nonce)) };
}

function checkCode(ctx: FactorContext, p: Pending<'sms'>, code: string): void {
  const { phone, nonce, codeHash } = p.data as { phone?: string; nonce?: string; codeHash?: string };
  if (!phone || !nonce || !codeHasher(ctx.config.secrets.encryptionKey).matches(code, context(phone, nonce), codeHash)) {
    throw new FactorError('wrong_answer', 'factors.sms.wrong');
  }
}

const codeStep = (ctx: FactorContext, data: Record<string, unknown>, authenticatorId?: string): Step<'sms'> => ({
  kind: 'sms', authenticatorId, data, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.sms.codeTtlSeconds,
});

export const sms: Factor<'sms', SmsInput> = {
  kind: 'sms',
  proof: { amr: ['sms'], category: 'possession', phishingResistant: false },
  offer: 'restricted',
  ...OWNED_METHOD,

  parse: formInput(input),

  async usable(user, ctx, mine) {
    return (await enrolled(user, ctx, 'sms', mine)).filter((a) => typeof a.data.phone === 'string');
  },

  enroll: {
    async begin(_user, ctx) {
      return { kind: 'sms', data: { stage: 'phone' }, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
    },
    async finish(p, given, user, ctx) {
      if (p.data.stage === 'phone') {
        const phone = await toE164(given.phone ?? '');
        if (!phone) throw new FactorError('invalid_input', 'factors.sms.phoneInvalid');
        const mine = await sms.usable(user, ctx);
        if (mine.some((a) => a.data.phone === phone)) throw new FactorError('invalid_input', 'factors.sms.phoneTaken');
        return codeStep(ctx, { stage: 'code', ...(await sendCode(ctx, user.id, phone)) });
      }
      // A new code to the same number, within the resend limits (FactorError 'limited' keeps the one sent).
      if (given.resend) return codeStep(ctx, { stage: 'code', ...(await sendCode(ctx, user.id, String(p.data.phone))) });
      checkCode(ctx, p, cleanCode(given.code));
      const phone = String(p.data.phone);
      return ctx.store.authenticators.insert({ userId: user.id, kind: 'sms', label: maskPhone(phone), data: { phone } });
    },
  },

  async challenge(user, a, ctx) {
    const phone = a.data.phone;
    if (typeof phone !== 'string') throw new FactorError('unavailable', 'factors.sms.noPhone');
    return codeStep(ctx, await sendCode(ctx, user.id, phone), a.id);
  },

  async verify(p, given, ctx) {
    const a = await pendingAuthenticator(p, ctx, 'sms');
    const code = cleanCode(given.code);
    if (p.data.phone !== a.data.phone) throw new FactorError('expired');
    checkCode(ctx, p, code);
    await ctx.store.authenticators.markUsed(a.id);
    return { kind: 'sms', authenticatorId: a.id, ...sms.proof };
  },

  async view(p) {
    if (p.data.stage === 'phone') return { form: 'phone' };
    return { form: 'code', phone: typeof p.data.phone === 'string' ? maskPhone(p.data.phone) : '', digits: CODE_DIGITS, enrolling: !p.authenticatorId };
  },
};

