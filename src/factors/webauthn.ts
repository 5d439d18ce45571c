/**
 * Passkeys: "Sign in with face or fingerprint", WebAuthn platform authenticators through
 * @simplewebauthn/server. A passkey can be the first step on its own (a discoverable credential, no email
 * typed) or the second step after a password; either way user verification is required and the proof is
 * phishing-resistant: acr `phr`, amr `hwk` (or `swk` for a synced passkey, by the backup-eligible flag) and
 * `user`. Only the public key is stored; the biometric never leaves the device.
 *
 * Server-side checks: a challenge is single use and short-lived (webauthn.challengeTtlSeconds) and is
 * taken out of storage before it is checked; origin (any of webauthn.origins) and rpId hash, type, UP and
 * UV are checked by the library; the public-key algorithms and the platform attachment are enforced here,
 * not only asked of the browser; a credential id can belong to one account only; a signature counter that
 * does not move forward is refused and logged; the backup flags are kept.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';
import { enrolled, formInput, methodLabel } from './common.ts';
import type { Config } from '../config.ts';
import { DuplicateCredentialError, type Authenticator } from '../store/authenticators.ts';
import type { User } from '../store/users.ts';
import { aaguidName } from './aaguids.ts';
import { FactorError, type Factor, type FactorContext, type Proof, type Step } from './types.ts';

const COSE = { EdDSA: -8, ES256: -7, RS256: -257 } as const;

/** Loaded on the first passkey ceremony, not at start-up (it and its ASN.1 parsers weigh about 13 MB). */
const library = () => import('@simplewebauthn/server');

const input = z.object({
  credential: z.string().max(20_000).optional(),
  label: z.string().max(1000).optional(),
}).loose();

export interface WebauthnInput {
  credential?: string | undefined;
  label?: string | undefined;
}

const b64url = z.string().regex(/^[A-Za-z0-9_-]*$/).max(8000);
const registration = z.object({
  id: b64url.min(1), rawId: b64url.min(1), type: z.literal('public-key'),
  authenticatorAttachment: z.string().max(30).optional(),
  response: z.object({ clientDataJSON: b64url, attestationObject: b64url, transports: z.array(z.string().max(30)).max(10).optional() }).loose(),
  clientExtensionResults: z.record(z.string(), z.unknown()).optional().default({}),
}).loose();
const assertion = z.object({
  id: b64url.min(1), rawId: b64url.min(1), type: z.literal('public-key'),
  authenticatorAttachment: z.string().max(30).optional(),
  response: z.object({ clientDataJSON: b64url, authenticatorData: b64url, signature: b64url, userHandle: b64url.optional() }).loose(),
  clientExtensionResults: z.record(z.string(), z.unknown()).optional().default({}),
}).loose();

function parseJson<S extends z.ZodType>(schema: S, text: string | undefined): z.infer<S> {
  if (!text) throw new FactorError('invalid_input', 'factors.webauthn.noResponse');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FactorError('invalid_input', 'factors.webauthn.noResponse');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new FactorError('invalid_input', 'factors.webauthn.noResponse');
  return parsed.data;
}

const rp = (config: Config) => ({ rpID: config.webauthn.rpId!, origins: [...config.webauthn.origins!] });
const algorithms = (config: Config) => config.webauthn.algorithms.map((a) => COSE[a]);
/** The WebAuthn user handle: the account id's bytes (random, stable, not personal). */
const userHandle = (userId: string) => Buffer.from(userId, 'utf8');

interface PasskeyData {
  counter: number;
  transports: string[];
  backupEligible: boolean;
  backedUp: boolean;
  aaguid?: string;
  /** The device (cookie hash) it was made on: a passkey that is not synced (not backup-eligible) stays there. */
  deviceHash?: string;
}
const dataOf = (a: Authenticator) => a.data as unknown as PasskeyData;

async function requestOptions(ctx: FactorContext, allow: Authenticator[] | undefined) {
  const { rpID } = rp(ctx.config);
  const { generateAuthenticationOptions } = await library();
  return generateAuthenticationOptions({
    rpID, userVerification: 'required', timeout: ctx.config.webauthn.challengeTtlSeconds * 1000,
    ...(allow ? { allowCredentials: allow.map((a) => ({ id: a.externalId!, transports: dataOf(a).transports })) } : {}),
  });
}

/** A signature counter that did not move forward: audited in the log, refused like a replay. */
function counterRefused(ctx: FactorContext, a: Authenticator, storedCounter: number, newCounter?: number): FactorError {
  ctx.log.warn({ authenticatorId: a.id, userId: a.userId, storedCounter, newCounter }, 'passkey signature counter did not move forward: refused (a cloned authenticator?)');
  return new FactorError('replayed', 'factors.webauthn.counter');
}

/** Checks an assertion for this credential against the challenge that was taken out; the proof. */
async function checkAssertion(ctx: FactorContext, a: Authenticator, challenge: unknown, response: AuthenticationResponseJSON): Promise<Proof> {
  if (typeof challenge !== 'string') throw new FactorError('expired');
  const { rpID, origins } = rp(ctx.config);
  const stored = dataOf(a);
  const { verifyAuthenticationResponse } = await library();
  let result;
  try {
    result = await verifyAuthenticationResponse({
      response, expectedChallenge: challenge, expectedOrigin: origins, expectedRPID: rpID, requireUserVerification: true,
      credential: { id: a.externalId!, publicKey: new Uint8Array(Buffer.from(a.publicKey!, 'base64url')), counter: stored.counter, transports: stored.transports as never },
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/counter/i.test(message)) {
      throw counterRefused(ctx, a, stored.counter);
    }
    ctx.log.info({ authenticatorId: a.id, reason: message }, 'passkey assertion refused');
    throw new FactorError('wrong_answer', 'factors.webauthn.refused');
  }
  const info = result.authenticationInfo;
  if (!result.verified || !info.userVerified) {
    ctx.log.info({ authenticatorId: a.id, reason: result.verified ? 'user not verified' : 'signature not valid' }, 'passkey assertion refused');
    throw new FactorError('wrong_answer', 'factors.webauthn.refused');
  }
  // Backup eligibility is fixed for a credential's life (WebAuthn L3 §6.1.3): one that changed is not the
  // authenticator that registered (a copy, or a changed one), and would get a proof it does not deserve.
  if ((info.credentialDeviceType === 'multiDevice') !== stored.backupEligible) {
    ctx.log.warn({ authenticatorId: a.id, userId: a.userId, registeredBackupEligible: stored.backupEligible },
      'passkey backup-eligible flag changed since registration: refused (a cloned or changed authenticator?)');
    throw new FactorError('wrong_answer', 'factors.webauthn.changed');
  }
  // Belt and braces: the library refuses a counter that does not increase; never store one that goes back.
  if ((info.newCounter > 0 || stored.counter > 0) && info.newCounter <= stored.counter) {
    throw counterRefused(ctx, a, stored.counter, info.newCounter);
  }
  // Read, compare, then a conditional write: another sign-in that moved the counter first wins.
  if (!(await ctx.store.authenticators.updateData(a.id, { ...stored, counter: info.newCounter, backedUp: info.credentialBackedUp }, stored.counter))) {
    throw counterRefused(ctx, a, stored.counter, info.newCounter);
  }
  return proofOf(a);
}

function proofOf(a: Authenticator): Proof {
  return { kind: 'webauthn', authenticatorId: a.id, amr: [dataOf(a).backupEligible ? 'swk' : 'hwk', 'user'], category: 'possession', phishingResistant: true };
}

const challengeStep = (ctx: FactorContext, options: { challenge: string }, authenticatorId?: string): Step<'webauthn'> => ({
  kind: 'webauthn', authenticatorId, data: { options, challenge: options.challenge }, attempts: 1, ttlSeconds: ctx.config.webauthn.challengeTtlSeconds,
});

export const webauthn: Factor<'webauthn', WebauthnInput> = {
  kind: 'webauthn',
  proof: { amr: ['hwk', 'user'], category: 'possession', phishingResistant: true },
  alsoProves: [{ amr: ['swk', 'user'], category: 'possession', phishingResistant: true }],
  offer: 'normal',
  needs: 'security-question',
  backsUp: false,
  enrolment: 'form',
  multiple: true,
  challengeOnce: true,

  parse: formInput(input),

  async usable(user, ctx, mine) {
    return (await enrolled(user, ctx, 'webauthn', mine)).filter((a) => a.externalId && a.publicKey);
  },

  cannotWorkHere(_a, here) {
    return here.platformAuthenticator === false ? 'factors.webauthn.noneHere' : undefined;
  },

  madeHere(a, here) {
    return !!here.deviceHash && dataOf(a).deviceHash === here.deviceHash;
  },

  madeElsewhere(a, here) {
    // Not synced, made in another browser that this one is not, not usable from a phone nearby. A browser
    // without a device cookie is not known to be another one (its cookies may just have been cleared).
    const { deviceHash, backupEligible, transports } = dataOf(a);
    return !backupEligible && !!deviceHash && !!here.deviceHash && deviceHash !== here.deviceHash && !transports.includes('hybrid');
  },

  enroll: {
    async begin(user, ctx) {
      const { rpID } = rp(ctx.config);
      const existing = await webauthn.usable(user, ctx);
      const { generateRegistrationOptions } = await library();
      const options = await generateRegistrationOptions({
        rpName: ctx.config.productName, rpID, userName: user.email, userDisplayName: user.name ?? user.email,
        userID: new Uint8Array(userHandle(user.id)), attestationType: 'none', timeout: ctx.config.webauthn.challengeTtlSeconds * 1000,
        excludeCredentials: existing.map((a) => ({ id: a.externalId!, transports: dataOf(a).transports })),
        authenticatorSelection: { authenticatorAttachment: 'platform', residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
        supportedAlgorithmIDs: algorithms(ctx.config),
      });
      return challengeStep(ctx, options);
    },
    async finish(p, given, user, ctx) {
      const response = parseJson(registration, given.credential) as RegistrationResponseJSON;
      const label = methodLabel(given.label);
      // What the browser reports is checked here too: only a platform authenticator (face, fingerprint, PIN of this device).
      if (response.authenticatorAttachment !== 'platform') throw new FactorError('invalid_input', 'factors.webauthn.notPlatform');
      const challenge = p.data.challenge;
      if (typeof challenge !== 'string') throw new FactorError('expired');
      const { rpID, origins } = rp(ctx.config);
      const { verifyRegistrationResponse } = await library();
      let result;
      try {
        result = await verifyRegistrationResponse({
          response, expectedChallenge: challenge, expectedOrigin: origins, expectedRPID: rpID,
          requireUserVerification: true, requireUserPresence: true, supportedAlgorithmIDs: algorithms(ctx.config),
        });
      } catch (err) {
        ctx.log.info({ userId: user.id, reason: (err as Error).message }, 'passkey registration refused');
        throw new FactorError('wrong_answer', 'factors.webauthn.refused');
      }
      if (!result.verified) throw new FactorError('wrong_answer', 'factors.webauthn.refused');
      const { credential, credentialDeviceType, credentialBackedUp, aaguid, userVerified } = result.registrationInfo;
      if (!userVerified) throw new FactorError('wrong_answer', 'factors.webauthn.refused');
      const data: PasskeyData = {
        counter: credential.counter, transports: credential.transports ?? [], backupEligible: credentialDeviceType === 'multiDevice',
        backedUp: credentialBackedUp, aaguid, ...(ctx.here?.deviceHash ? { deviceHash: ctx.here.deviceHash } : {}),
      };
      try {
        return await ctx.store.authenticators.insert({
          userId: user.id, kind: 'webauthn', label: label || aaguidName(aaguid) || 'Passkey',
          publicKey: Buffer.from(credential.publicKey).toString('base64url'), externalId: credential.id, data: { ...data },
        });
      } catch (err) {
        // The response was checked against its challenge: spent like an expired one, never put back.
        if (err instanceof DuplicateCredentialError) throw new FactorError('expired', 'factors.webauthn.duplicate');
        throw err;
      }
    },
  },

  async challenge(user, a, ctx) {
    return challengeStep(ctx, await requestOptions(ctx, await webauthn.usable(user, ctx)), a.id);
  },

  async verify(p, given, ctx) {
    const response = parseJson(assertion, given.credential) as AuthenticationResponseJSON;
    const a = await ctx.store.authenticators.findByExternalId(response.id);
    // Any of the user's passkeys will do; another account's never does.
    if (!a || a.kind !== 'webauthn' || a.userId !== p.userId) throw new FactorError('wrong_answer', 'factors.webauthn.unknownCredential');
    return checkAssertion(ctx, a, p.data.challenge, response);
  },

  async view(p, _user, _ctx) {
    // Embedded in a <script type="application/json"> block: "<" escaped, so no name can close the element.
    return { form: p.authenticatorId ? 'passkey' : 'setup', options: JSON.stringify(p.data.options ?? {}).replace(/</g, '\\u003c') };
  },
};

/** The passkey as the first step: a challenge for anyone, then the account its credential belongs to. */
export const passkeySignIn = {
  async begin(ctx: FactorContext): Promise<Step<'webauthn'>> {
    return challengeStep(ctx, await requestOptions(ctx, undefined));
  },
  /** The (active) account a signed response claims to come from, or undefined; nothing is checked yet. */
  async owner(given: WebauthnInput, ctx: FactorContext): Promise<{ user: User; authenticator: Authenticator; response: AuthenticationResponseJSON } | undefined> {
    const response = parseJson(assertion, given.credential) as AuthenticationResponseJSON;
    const a = await ctx.store.authenticators.findByExternalId(response.id);
    const user = a ? await ctx.store.users.findById(a.userId) : undefined;
    if (!a || a.kind !== 'webauthn' || !user || user.status !== 'active') return undefined;
    const handle = response.response.userHandle;
    if (handle !== undefined && handle !== userHandle(user.id).toString('base64url')) return undefined;
    return { user, authenticator: a, response };
  },
  /** Checks the response against the challenge that was taken out: the proof, or FactorError. */
  async prove(p: { data: Record<string, unknown> }, owner: { authenticator: Authenticator; response: AuthenticationResponseJSON }, ctx: FactorContext): Promise<Proof> {
    return checkAssertion(ctx, owner.authenticator, p.data.challenge, owner.response);
  },
};
