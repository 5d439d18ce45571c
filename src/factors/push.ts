/**
 * Mobile app prompts: a phone paired with the account (Latchkey's own web app at /app/) approves a sign-in
 * by typing the number the sign-in page shows (README, "Mobile app prompts"; the rules are push/prompts.ts,
 * the app's protocol docs/mobile-app-protocol.md).
 *
 * - Enrolment: the account page shows a short code (single use, 5 minutes) and its QR code; the app pairs
 *   with it over the signed API, then answers a test prompt. Only then does `finish` make the method, one
 *   per device.
 * - Sign-in: one method stands for every device of the user (the prompt goes to each of them); when none
 *   can get prompts any more (signed out, not seen for 30 days) the method says so and the sign-in opens
 *   another one.
 * - The proof is `mca`, possession, made by the device that approved; a denial ends the sign-in.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { renderSVG } from 'uqr';
import { z } from 'zod';
import { enrolled, formInput, OWNED_METHOD } from './common.ts';
import { FactorError, type Authenticator, type Factor, type FactorContext } from './types.ts';
import { deliver, deviceLive, promptStep, type PromptOrigin } from '../push/prompts.ts';
import type { PushDevice } from '../store/push-devices.ts';

/** Crockford's base32 without I, L, O, U: nothing to misread when typed from a screen. */
const CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const PAIRING_CODE_TTL_SECONDS = 300;

/** "ABCD-EFGH": 40 bits, single use, 5 minutes, tried at most a few times per IP (push/api.ts). */
export function newPairingCode(): string {
  const chars = Array.from({ length: 8 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
  return `${chars.slice(0, 4)}-${chars.slice(4)}`;
}

/** A typed code as issued: upper case, the dash in place; undefined when it cannot be one. */
export function normalPairingCode(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const chars = value.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return /^[0-9A-HJKMNP-TV-Z]{8}$/.test(chars) ? `${chars.slice(0, 4)}-${chars.slice(4)}` : undefined;
}

const input = z.object({}).loose();
export type PushInput = z.infer<typeof input>;

/** The device behind each of the user's push methods, with what it can do now in `data.deviceState`. */
async function devicesOf(userId: string, ctx: FactorContext): Promise<Map<string, PushDevice>> {
  const devices = await ctx.store.pushDevices.listForUser(userId);
  return new Map(devices.filter((d) => d.authenticatorId).map((d) => [d.authenticatorId!, d]));
}

const withState = (a: Authenticator, d: PushDevice | undefined, live: boolean): Authenticator =>
  ({ ...a, data: { ...a.data, deviceState: live ? d!.state : 'signed-out', lastSeenAt: d?.lastSeenAt.toISOString() ?? null } });

/** The number the pairing's test prompt asks for, while it waits (the account page shows it; the phone types it). */
async function pairingNumber(userId: string, pairingId: string, ctx: FactorContext): Promise<string | undefined> {
  const waiting = await ctx.store.pending.waitingFor(userId, 'push');
  return waiting.find((row) => row.data.purpose === 'test' && row.data.pairingId === pairingId)?.secret;
}

/** What a page needs to show the prompt's number while it waits, and to offer "Send again". */
const promptView = (p: { data: Record<string, unknown>; secret?: string | undefined; expiresAt: number }) => ({
  form: 'prompt', number: p.secret ?? '', digits: p.data.numberDigits, expiresAt: new Date(p.expiresAt).toISOString(),
});

export const push: Factor<'push', PushInput> = {
  kind: 'push',
  proof: { amr: ['mca'], category: 'possession', phishingResistant: false },
  offer: 'normal',
  ...OWNED_METHOD,
  answeredElsewhere: true,

  parse: formInput(input),

  /**
   * One method for all of the user's devices: the first live one paired (the prompt goes to every live
   * one), or, when none is live, the first one with `deviceState: 'signed-out'`, so the second step can say
   * why it asks another way. Stable while a prompt waits: a phone fetching it (and so seen last) must not
   * change the method the waiting sign-in's challenge belongs to.
   */
  async usable(user, ctx, mine) {
    const methods = await enrolled(user, ctx, 'push', mine);
    if (!methods.length) return [];
    const devices = await devicesOf(user.id, ctx);
    const now = ctx.now();
    const sorted = [...methods].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
    const live = sorted.find((a) => devices.has(a.id) && deviceLive(devices.get(a.id)!, now));
    return live ? [withState(live, devices.get(live.id), true)] : [withState(sorted[0]!, devices.get(sorted[0]!.id), false)];
  },

  cannotWorkHere(a) {
    return a.data.deviceState === 'signed-out' ? 'factors.push.signedOut' : undefined;
  },

  enroll: {
    async begin(user, ctx) {
      const pairingId = randomBytes(18).toString('base64url');
      const code = newPairingCode();
      await ctx.store.codes.issue('push_pair', user.id, PAIRING_CODE_TTL_SECONDS, { pairingId }, code);
      const codeExpiresAt = new Date(ctx.now() + PAIRING_CODE_TTL_SECONDS * 1000).toISOString();
      return { kind: 'push', data: { stage: 'pair', pairingId, codeExpiresAt }, secret: code, attempts: 3, ttlSeconds: ctx.config.twoStep.stepTtlSeconds };
    },
    /** The device paired with this enrolment's code and answered its test prompt: the method is made. */
    async finish(p, _input, user, ctx) {
      const device = typeof p.data.pairingId === 'string' ? await ctx.store.pushDevices.findByPairing(user.id, p.data.pairingId) : undefined;
      if (!device) {
        // The code died unused: the page starts again with a new one.
        if (Date.parse(String(p.data.codeExpiresAt)) <= ctx.now()) throw new FactorError('expired', 'factors.push.codeExpired');
        throw new FactorError('invalid_input', 'factors.push.notPaired');
      }
      if (!device.confirmedAt || device.state === 'signed-out') throw new FactorError('invalid_input', 'factors.push.notConfirmed');
      const a = await ctx.store.authenticators.insert({ userId: user.id, kind: 'push', label: device.name, externalId: device.id, data: { deviceId: device.id } });
      if (!(await ctx.store.pushDevices.linkAuthenticator(device.id, a.id))) {
        await ctx.store.authenticators.remove(user.id, a.id);
        throw new FactorError('expired');
      }
      return a;
    },
  },

  /** The pairing's progress: waiting for the phone, paired (its test prompt not approved yet), confirmed; expired once the code is, unpaired. */
  async enrolStatus(p, user, ctx) {
    const device = typeof p.data.pairingId === 'string' ? await ctx.store.pushDevices.findByPairing(user.id, p.data.pairingId) : undefined;
    if (!device) return { state: Date.parse(String(p.data.codeExpiresAt)) <= ctx.now() ? 'expired' : 'waiting' };
    if (device.confirmedAt && device.state !== 'signed-out') return { state: 'confirmed' };
    return { state: 'paired', number: await pairingNumber(user.id, String(p.data.pairingId), ctx) };
  },

  /** Each phone's state (active, open-app, signed-out: one that is not live shows as signed out) and when it was last seen. */
  async describe(methods, ctx) {
    const userId = methods[0]?.userId;
    const devices = userId ? await devicesOf(userId, ctx) : new Map<string, PushDevice>();
    const now = ctx.now();
    return new Map(methods.map((a) => {
      const d = devices.get(a.id);
      return [a.id, { state: d && deviceLive(d, now) ? d.state : 'signed-out', lastSeenAt: d?.lastSeenAt ?? null }];
    }));
  },

  async outOfUse(methods, ctx) {
    const userId = methods[0]?.userId;
    const devices = userId ? await devicesOf(userId, ctx) : new Map<string, PushDevice>();
    const now = ctx.now();
    return new Set(methods.filter((a) => !devices.has(a.id) || !deviceLive(devices.get(a.id)!, now)).map((a) => a.id));
  },

  async renamed(a, label, ctx) {
    await ctx.store.pushDevices.rename(a.userId, a.id, label);
  },

  async challenge(user, a, ctx) {
    if (a.data.deviceState === 'signed-out') throw new FactorError('unavailable', 'factors.push.signedOut');
    const origin: PromptOrigin = ctx.origin ?? { ip: '', browser: '', os: '', place: { ip: '', country: null }, client: { id: null, name: ctx.config.productName, logoUrl: null } };
    return promptStep({ ...ctx }, user, { purpose: 'sign-in', origin, authenticatorId: a.id });
  },

  async challenged(_user, p, ctx) {
    await deliver(ctx, p);
  },

  async verify(p, _input, ctx) {
    if (p.status === 'denied') {
      // Three wrong numbers spent the prompt; anything else is the person saying no.
      if (p.attemptsLeft <= 0) throw new FactorError('expired', 'factors.push.ended');
      throw new FactorError('denied', 'factors.push.denied');
    }
    if (p.status !== 'approved') throw new FactorError('invalid_input', 'factors.push.waiting');
    const by = p.resolvedBy ? await ctx.store.authenticators.find(p.userId, p.resolvedBy) : undefined;
    if (!by || by.kind !== 'push') throw new FactorError('expired');
    await ctx.store.authenticators.markUsed(by.id);
    return { kind: 'push', authenticatorId: by.id, ...push.proof };
  },

  async view(p, user, ctx) {
    if (p.data.stage === 'pair') {
      const code = p.secret ?? '';
      // Once a phone paired, the number its test prompt asks for (shown here only: this session's page).
      const number = typeof p.data.pairingId === 'string' ? await pairingNumber(user.id, p.data.pairingId, ctx) : undefined;
      const url = `${new URL('/app/pair', ctx.config.issuer).href}#code=${code}`;
      const svg = renderSVG(url, { ecc: 'M', border: 2 });
      return { form: 'pair', code, url, appUrl: new URL('/app/', ctx.config.issuer).href, qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`, number, expiresAt: typeof p.data.codeExpiresAt === 'string' ? p.data.codeExpiresAt : new Date(p.expiresAt).toISOString() };
    }
    return promptView(p);
  },
};
