/**
 * Recovery codes: a set of `twoStep.recoveryCodes.count` codes (at least 10), each 80 random bits written as
 * 16 base32 characters (XXXX-XXXX-XXXX-XXXX), for when the usual method is out of reach. Made when the first
 * possession method is enabled, shown once (to copy or download), active once the user confirms they saved
 * them; stored as hashes, each spent by one conditional write; making a new set kills the old one. A
 * recovery code is a second step like the others (password + code = mfa), offered last.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { enrolled, formInput } from './common.ts';
import { FactorError, type Factor } from './types.ts';
import { asciiDigits } from '../text.ts';

/** 32 symbols without the look-alikes I, O, 0 and 1. */
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
/** Codes never expire by themselves; a new set kills the old one. */
const CODE_TTL_SECONDS = 100 * 365 * 86400;
const ATTEMPTS = 5;

/** 16 characters from a 32-letter alphabet: 80 bits. */
export function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  let out = '';
  for (const b of bytes) out += ALPHABET[b & 31];
  return out.match(/.{4}/g)!.join('-');
}

/** What the user typed, as stored: digits of any script as ASCII, upper case, without spaces and dashes. */
export function normalizeRecoveryCode(value: string): string {
  return asciiDigits(value).toUpperCase().replace(/[\s-]/g, '');
}

const canonical = normalizeRecoveryCode;

const input = z.object({ code: z.string().max(100).optional(), confirm: z.string().max(10).optional() }).loose();

export interface RecoveryCodeInput {
  code?: string | undefined;
  confirm?: string | undefined;
}

export const recoveryCode: Factor<'recovery-code', RecoveryCodeInput> = {
  kind: 'recovery-code',
  proof: { amr: ['otp'], category: 'possession', phishingResistant: false },
  offer: 'last-resort',
  needs: 'security-question',
  backsUp: true,
  enrolment: 'generated',
  multiple: false,
  challengeOnce: false,

  parse: formInput(input),

  async usable(user, ctx, mine) {
    const set = await enrolled(user, ctx, 'recovery-code', mine);
    if (!set.length || (await ctx.store.codes.countLive('recovery_code', user.id)) === 0) return [];
    return set;
  },

  enroll: {
    async begin(_user, ctx) {
      const codes = Array.from({ length: ctx.config.twoStep.recoveryCodes.count }, newRecoveryCode);
      return { kind: 'recovery-code', data: {}, secret: codes.join(','), attempts: 1, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
    },
    async finish(p, given, user, ctx) {
      if (given.confirm !== 'yes') throw new FactorError('invalid_input', 'factors.recovery-code.confirmSaved');
      const codes = (p.secret ?? '').split(',').filter(Boolean);
      if (codes.length === 0) throw new FactorError('expired');
      await ctx.store.codes.replaceSet('recovery_code', user.id, codes.map(canonical), CODE_TTL_SECONDS);
      const [existing] = (await ctx.store.authenticators.listForUser(user.id)).filter((a) => a.kind === 'recovery-code');
      if (existing) {
        await ctx.store.authenticators.replace(user.id, existing.id, { data: { count: codes.length, generatedAt: new Date().toISOString() } });
        return (await ctx.store.authenticators.find(user.id, existing.id))!;
      }
      return ctx.store.authenticators.insert({
        userId: user.id, kind: 'recovery-code', label: 'Recovery codes', data: { count: codes.length, generatedAt: new Date().toISOString() },
      });
    },
  },

  async challenge(_user, a, ctx) {
    return { kind: 'recovery-code', authenticatorId: a.id, data: {}, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
  },

  async verify(p, given, ctx) {
    const typed = canonical(given.code ?? '');
    if (!typed) throw new FactorError('invalid_input', 'factors.recovery-code.codeRequired');
    if (!/^[A-HJ-NP-Z2-9]{16}$/.test(typed)) throw new FactorError('invalid_input', 'factors.recovery-code.codeShape');
    if (!(await ctx.store.codes.spendOfUser('recovery_code', p.userId, typed))) throw new FactorError('wrong_answer', 'factors.recovery-code.wrong');
    if (p.authenticatorId) await ctx.store.authenticators.markUsed(p.authenticatorId);
    return { kind: 'recovery-code', authenticatorId: p.authenticatorId ?? `recovery-code:${p.userId}`, ...recoveryCode.proof };
  },

  async view(p, _user, ctx) {
    if (p.authenticatorId) return { form: 'code', left: await ctx.store.codes.countLive('recovery_code', p.userId) };
    const codes = (p.secret ?? '').split(',').filter(Boolean);
    const text = `${ctx.config.productName} recovery codes\n\n${codes.join('\n')}\n\nEach code works once.\n`;
    return { form: 'setup', codes, download: `data:text/plain;charset=utf-8,${encodeURIComponent(text)}` };
  },
};
