/**
 * Authenticator apps (TOTP, RFC 6238) through otplib: SHA-1, 30-second steps, 6 digits by default for
 * interoperability (6 to 8 configurable), a 160-bit seed sealed at rest and shown only while enrolling.
 * Enrolment is active only after one valid code. Accepted: the current step and `twoStep.totp.pastSteps`
 * before it (default 1), `futureSteps` after it (default 0). A step once accepted, and every step before
 * it, is never accepted again: one conditional write on the authenticator's `last_step`.
 */
import { generate, generateSecret, generateURI, verify as verifyCode } from 'otplib';
import { renderSVG } from 'uqr';
import { z } from 'zod';
import { enrolled, formInput, methodLabel, OWNED_METHOD, pendingAuthenticator } from './common.ts';
import type { Config } from '../config.ts';
import { FactorError, type Factor } from './types.ts';
import { asciiDigits } from '../text.ts';

export const PERIOD = 30;
const ATTEMPTS = 5;

type Digits = 6 | 7 | 8;

const input = z.object({
  code: z.string().max(100).optional(),
  label: z.string().max(1000).optional(),
}).loose();

export interface TotpInput {
  code?: string | undefined;
  label?: string | undefined;
}

/** The code an app shows at `epochSeconds` for this (base32) seed. */
export function codeAt(seed: string, epochSeconds: number, digits: number): Promise<string> {
  return generate({ secret: seed, epoch: epochSeconds, digits: digits as Digits, period: PERIOD, algorithm: 'sha1' });
}

/** Digits only, spaces allowed ("123 456"); anything else is not a code. */
function cleanCode(code: string | undefined, digits: number): string {
  const cleaned = asciiDigits(code ?? '').replace(/[\s-]/g, '');
  if (!cleaned) throw new FactorError('invalid_input', 'factors.totp.codeRequired');
  if (!new RegExp(`^\\d{${digits}}$`).test(cleaned)) throw new FactorError('invalid_input', 'factors.totp.codeShape', { digits });
  return cleaned;
}

/** The time step the code belongs to within the accepted window (newer than `after`), or undefined. */
async function matchStep(config: Config, seed: string, code: string, digits: number, nowMs: number, after?: number | null): Promise<number | undefined> {
  const { pastSteps, futureSteps } = config.twoStep.totp;
  const result = await verifyCode({
    secret: seed, token: code, digits: digits as Digits, period: PERIOD, algorithm: 'sha1',
    epoch: Math.floor(nowMs / 1000), epochTolerance: [pastSteps * PERIOD, futureSteps * PERIOD],
    ...(after === null || after === undefined ? {} : { afterTimeStep: after }),
  });
  // The TOTP strategy's result carries the matched time step (the HOTP one, in the same union, does not).
  return result.valid && 'timeStep' in result && typeof result.timeStep === 'number' ? result.timeStep : undefined;
}

export function otpauthUri(config: Config, email: string, seed: string, digits: number): string {
  return generateURI({ issuer: config.productName, label: email, secret: seed, algorithm: 'sha1', digits: digits as Digits, period: PERIOD });
}

export const totp: Factor<'totp', TotpInput> = {
  kind: 'totp',
  proof: { amr: ['otp'], category: 'possession', phishingResistant: false },
  offer: 'normal',
  ...OWNED_METHOD,

  parse: formInput(input),

  async usable(user, ctx, mine) {
    return (await enrolled(user, ctx, 'totp', mine)).filter((a) => a.secret);
  },

  enroll: {
    async begin(_user, ctx) {
      // 20 random bytes: the 160 bits RFC 4226 recommends, base32 for the apps.
      const seed = generateSecret({ length: 20 });
      return { kind: 'totp', data: { digits: ctx.config.twoStep.totp.digits }, secret: seed, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
    },
    async finish(p, given, user, ctx) {
      const digits = Number(p.data.digits);
      const seed = p.secret;
      if (!seed) throw new FactorError('expired');
      const label = methodLabel(given.label);
      const code = cleanCode(given.code, digits);
      const step = await matchStep(ctx.config, seed, code, digits, ctx.now());
      if (step === undefined) throw new FactorError('wrong_answer', 'factors.totp.wrongSetup');
      // The code that activated the app is spent like any other.
      return ctx.store.authenticators.insert({
        userId: user.id, kind: 'totp', label: label || 'Authenticator app', data: { digits, period: PERIOD, algorithm: 'SHA1' },
        secret: seed, lastStep: step,
      });
    },
  },

  async challenge(_user, a, ctx) {
    return { kind: 'totp', authenticatorId: a.id, data: {}, attempts: ATTEMPTS, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
  },

  async verify(p, given, ctx) {
    const a = await pendingAuthenticator(p, ctx, 'totp', (a) => !!a.secret);
    const digits = Number(a.data.digits) || ctx.config.twoStep.totp.digits;
    const code = cleanCode(given.code, digits);
    const step = await matchStep(ctx.config, a.secret!, code, digits, ctx.now(), a.lastStep);
    if (step === undefined) {
      const spent = await matchStep(ctx.config, a.secret!, code, digits, ctx.now());
      throw spent === undefined ? new FactorError('wrong_answer', 'factors.totp.wrong') : new FactorError('replayed', 'factors.totp.replayed');
    }
    // Two requests with the same code: the database lets one of them move last_step forward.
    if (!(await ctx.store.authenticators.advanceStep(a.id, step))) throw new FactorError('replayed', 'factors.totp.replayed');
    return { kind: 'totp', authenticatorId: a.id, ...totp.proof };
  },

  async view(p, user, ctx) {
    if (p.authenticatorId) {
      const a = await pendingAuthenticator(p, ctx, 'totp', (a) => !!a.secret).catch(() => undefined);
      return { form: 'code', label: a?.label, digits: Number(a?.data.digits) || ctx.config.twoStep.totp.digits };
    }
    const digits = Number(p.data.digits);
    const uri = otpauthUri(ctx.config, user.email, p.secret ?? '', digits);
    const svg = renderSVG(uri, { ecc: 'M', border: 2 });
    return {
      form: 'setup', digits, uri,
      // Shown while enrolling only: the seed, grouped for typing, and the same as a QR code (an image made here).
      secretGroups: (p.secret ?? '').match(/.{1,4}/g) ?? [],
      qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
    };
  },
};

