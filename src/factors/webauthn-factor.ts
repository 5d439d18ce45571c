/**
 * What the WebAuthn methods share. A passkey (webauthn.ts: this device's face, fingerprint or screen lock)
 * and a security key (security-key.ts: a roaming FIDO2 authenticator such as a YubiKey) are the same
 * ceremonies through @simplewebauthn/server, told apart by a `WebauthnSpec`: the authenticator attachment
 * asked for and enforced, whether user verification is required or only preferred, the resident key, and
 * the strings. Each is a kind of its own in the registry, with its own card and its own credentials.
 *
 * What a proof says: amr `hwk` (or `swk` for a backup-eligible credential: a synced passkey), and `user`
 * only when the authenticator verified the user (face, fingerprint, PIN) in that very ceremony. Every
 * proof is phishing-resistant (the signature is bound to the origin). A key without user verification
 * proves possession only: after a password that is two factors, on its own it is one, so the first step
 * on its own (passkey-sign-in.ts) always requires user verification.
 *
 * Server-side checks: a challenge is single use and short-lived (webauthn.challengeTtlSeconds) and is
 * taken out of storage before it is checked; origin (any of webauthn.origins) and rpId hash, type, UP and
 * (where required) UV are checked by the library; the public-key algorithms and the attachment are
 * enforced here, not only asked of the browser; a credential id can belong to one account only and
 * answers only for its own kind; a signature counter that does not move forward is refused and logged;
 * the backup flags are kept.
 */
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { z } from 'zod';
import { enrolled, formInput, methodLabel } from './common.ts';
import type { Config } from '../config.ts';
import { DuplicateCredentialError, type Authenticator } from '../store/authenticators.ts';
import { aaguidName } from './aaguids.ts';
import { FactorError, type Amr, type Factor, type FactorContext, type Proof, type ProofShape, type Step, type StepKind } from './types.ts';

/** How one WebAuthn method differs from another. */
export interface WebauthnSpec<K extends StepKind> {
  kind: K;
  /** Asked of the browser and enforced on the registration: this device's own authenticator, or a roaming one. */
  attachment: 'platform' | 'cross-platform';
  /**
   * `required`: every ceremony verifies the user (a passkey). `preferred`: asked for, proved when done
   * (amr `user`), and required only to sign in without a password (a key without a PIN).
   */
  userVerification: 'required' | 'preferred';
  /** A discoverable credential (to sign in without typing an email): required, or made when the authenticator can. */
  residentKey: 'required' | 'preferred';
  /** Keep the device (cookie hash) it was made on: a platform credential that is not synced stays there. */
  remembersDevice: boolean;
  /** The name of a new one when the user gives none and its AAGUID names no provider. */
  defaultLabel: string;
  /** The template part of the second step (views/factors/<kind>/<assertForm>.njk). */
  assertForm: string;
  /** The strings key (under factors.<kind>) for a registration by the other kind of authenticator. */
  wrongAttachment: string;
}

export interface WebauthnInput {
  credential?: string | undefined;
  label?: string | undefined;
}

/** A WebAuthn method: a factor, and the spec it was made from. */
export type WebauthnFactor<K extends StepKind = StepKind> = Factor<K, WebauthnInput> & { readonly webauthn: WebauthnSpec<K> };

/** What the device traits of a method (cannotWorkHere, madeHere, madeElsewhere) are made of. */
type DeviceTraits<K extends StepKind> = Pick<Factor<K, WebauthnInput>, 'cannotWorkHere' | 'madeHere' | 'madeElsewhere'>;

const COSE = { EdDSA: -8, ES256: -7, RS256: -257 } as const;

/** Loaded on the first ceremony, not at start-up (it and its ASN.1 parsers weigh about 13 MB). */
const library = () => import('@simplewebauthn/server');

const input = z.object({
  credential: z.string().max(20_000).optional(),
  label: z.string().max(1000).optional(),
}).loose();

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

function parseJson<S extends z.ZodType>(schema: S, text: string | undefined, message: string): z.infer<S> {
  if (!text) throw new FactorError('invalid_input', message);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FactorError('invalid_input', message);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new FactorError('invalid_input', message);
  return parsed.data;
}

const rp = (config: Config) => ({ rpID: config.webauthn.rpId!, origins: [...config.webauthn.origins!] });
const algorithms = (config: Config) => config.webauthn.algorithms.map((a) => COSE[a]);
/** The WebAuthn user handle: the account id's bytes (random, stable, not personal). */
export const userHandle = (userId: string) => Buffer.from(userId, 'utf8');

/** A signed assertion as the form sent it (JSON), checked for shape only; FactorError('invalid_input', message) otherwise. */
export const readAssertion = (text: string | undefined, message: string) => parseJson(assertion, text, message) as AuthenticationResponseJSON;
/** A strings key of this method (factors.<kind>.<name>). */
const say = (spec: WebauthnSpec<StepKind>, name: string) => `factors.${spec.kind}.${name}`;

export interface CredentialData {
  counter: number;
  transports: string[];
  backupEligible: boolean;
  backedUp: boolean;
  aaguid?: string;
  /** The device (cookie hash) it was made on, for a method that remembers it (a passkey). */
  deviceHash?: string;
}
export const dataOf = (a: Authenticator) => a.data as unknown as CredentialData;

/** Options for navigator.credentials.get(): these credentials (none: any discoverable one), with or without user verification. */
export async function requestOptions(ctx: FactorContext, userVerification: 'required' | 'preferred', allow: Authenticator[] | undefined, hints: string[] = []) {
  const { rpID } = rp(ctx.config);
  const { generateAuthenticationOptions } = await library();
  const options = await generateAuthenticationOptions({
    rpID, userVerification, timeout: ctx.config.webauthn.challengeTtlSeconds * 1000,
    ...(allow ? { allowCredentials: allow.map((a) => ({ id: a.externalId!, transports: dataOf(a).transports })) } : {}),
  });
  // WebAuthn L3 hints: the browser goes straight to its security key prompt.
  return hints.length ? { ...options, hints } : options;
}

/** A signature counter that did not move forward: audited in the log, refused like a replay. */
function counterRefused(ctx: FactorContext, spec: WebauthnSpec<StepKind>, a: Authenticator, storedCounter: number, newCounter?: number): FactorError {
  ctx.log.warn({ kind: a.kind, authenticatorId: a.id, userId: a.userId, storedCounter, newCounter }, 'passkey signature counter did not move forward: refused (a cloned authenticator?)');
  return new FactorError('replayed', say(spec, 'counter'));
}

/** The proof of an assertion this credential signed, with user verification or not. */
function proofOf(a: Authenticator, userVerified: boolean): Proof {
  const amr: Amr[] = [dataOf(a).backupEligible ? 'swk' : 'hwk', ...(userVerified ? ['user' as const] : [])];
  return { kind: a.kind as StepKind, authenticatorId: a.id, amr, category: 'possession', phishingResistant: true };
}

/**
 * Checks an assertion for this credential against the challenge that was taken out; the proof. `requireUv`:
 * the user must have been verified (a passkey always; a key when it signs in without a password).
 */
export async function checkAssertion(ctx: FactorContext, spec: WebauthnSpec<StepKind>, a: Authenticator, challenge: unknown, response: AuthenticationResponseJSON, requireUv: boolean): Promise<Proof> {
  if (typeof challenge !== 'string') throw new FactorError('expired');
  const { rpID, origins } = rp(ctx.config);
  const stored = dataOf(a);
  // Where user verification is usually optional (a key), its absence says why; where it is always asked, it is a broken answer.
  const unverified = new FactorError('wrong_answer', say(spec, spec.userVerification === 'required' ? 'refused' : 'notVerified'));
  const { verifyAuthenticationResponse } = await library();
  let result;
  try {
    result = await verifyAuthenticationResponse({
      response, expectedChallenge: challenge, expectedOrigin: origins, expectedRPID: rpID, requireUserVerification: requireUv,
      credential: { id: a.externalId!, publicKey: new Uint8Array(Buffer.from(a.publicKey!, 'base64url')), counter: stored.counter, transports: stored.transports as never },
    });
  } catch (err) {
    const message = (err as Error).message;
    if (/counter/i.test(message)) {
      throw counterRefused(ctx, spec, a, stored.counter);
    }
    ctx.log.info({ kind: a.kind, authenticatorId: a.id, reason: message }, 'passkey assertion refused');
    if (/user verification/i.test(message)) throw unverified;
    throw new FactorError('wrong_answer', say(spec, 'refused'));
  }
  const info = result.authenticationInfo;
  if (!result.verified || (requireUv && !info.userVerified)) {
    ctx.log.info({ kind: a.kind, authenticatorId: a.id, reason: result.verified ? 'user not verified' : 'signature not valid' }, 'passkey assertion refused');
    throw result.verified ? unverified : new FactorError('wrong_answer', say(spec, 'refused'));
  }
  // Backup eligibility is fixed for a credential's life (WebAuthn L3 §6.1.3): one that changed is not the
  // authenticator that registered (a copy, or a changed one), and would get a proof it does not deserve.
  if ((info.credentialDeviceType === 'multiDevice') !== stored.backupEligible) {
    ctx.log.warn({ kind: a.kind, authenticatorId: a.id, userId: a.userId, registeredBackupEligible: stored.backupEligible },
      'passkey backup-eligible flag changed since registration: refused (a cloned or changed authenticator?)');
    throw new FactorError('wrong_answer', say(spec, 'changed'));
  }
  // Belt and braces: the library refuses a counter that does not increase; never store one that goes back.
  if ((info.newCounter > 0 || stored.counter > 0) && info.newCounter <= stored.counter) {
    throw counterRefused(ctx, spec, a, stored.counter, info.newCounter);
  }
  // Read, compare, then a conditional write: another sign-in that moved the counter first wins.
  if (!(await ctx.store.authenticators.updateData(a.id, { ...stored, counter: info.newCounter, backedUp: info.credentialBackedUp }, stored.counter))) {
    throw counterRefused(ctx, spec, a, stored.counter, info.newCounter);
  }
  return proofOf(a, info.userVerified);
}

/** A challenge to keep until it is answered: one answer, for webauthn.challengeTtlSeconds. */
export function challengeStep<K extends StepKind>(ctx: FactorContext, kind: K, options: { challenge: string }, authenticatorId?: string): Step<K> {
  return { kind, authenticatorId, data: { options, challenge: options.challenge }, attempts: 1, ttlSeconds: ctx.config.webauthn.challengeTtlSeconds };
}

/** The proof shapes of a method: hwk (device-bound) or swk (synced), with `user` always or only when verified. */
function shapes(userVerification: WebauthnSpec<StepKind>['userVerification']): ProofShape[] {
  const base = { category: 'possession', phishingResistant: true } as const;
  const amrs: Amr[][] = userVerification === 'required'
    ? [['hwk', 'user'], ['swk', 'user']]
    : [['hwk'], ['hwk', 'user'], ['swk'], ['swk', 'user']];
  return amrs.map((amr) => ({ ...base, amr }));
}

/** A WebAuthn method from its spec; `traits`: what it knows of devices (a passkey stays where it was made). */
export function webauthnFactor<K extends StepKind>(spec: WebauthnSpec<K>, traits: DeviceTraits<K> = {}): WebauthnFactor<K> {
  const [proof, ...alsoProves] = shapes(spec.userVerification);
  const uvRequired = spec.userVerification === 'required';
  const factor: WebauthnFactor<K> = {
    kind: spec.kind,
    webauthn: spec,
    proof: proof!,
    alsoProves,
    offer: 'normal',
    needs: 'security-question',
    backsUp: false,
    enrolment: 'form',
    multiple: true,
    challengeOnce: true,
    ...traits,

    parse: formInput(input),

    async usable(user, ctx, mine) {
      return (await enrolled(user, ctx, spec.kind, mine)).filter((a) => a.externalId && a.publicKey);
    },

    enroll: {
      async begin(user, ctx) {
        const { rpID } = rp(ctx.config);
        const existing = await factor.usable(user, ctx);
        const { generateRegistrationOptions } = await library();
        const options = await generateRegistrationOptions({
          rpName: ctx.config.productName, rpID, userName: user.email, userDisplayName: user.name ?? user.email,
          userID: new Uint8Array(userHandle(user.id)), attestationType: 'none', timeout: ctx.config.webauthn.challengeTtlSeconds * 1000,
          excludeCredentials: existing.map((a) => ({ id: a.externalId!, transports: dataOf(a).transports })),
          authenticatorSelection: {
            authenticatorAttachment: spec.attachment, residentKey: spec.residentKey, requireResidentKey: spec.residentKey === 'required', userVerification: spec.userVerification,
          },
          // A roaming authenticator: the browser goes straight to its security key prompt (WebAuthn L3 hints).
          ...(spec.attachment === 'cross-platform' ? { preferredAuthenticatorType: 'securityKey' as const } : {}),
          supportedAlgorithmIDs: algorithms(ctx.config),
        });
        return challengeStep(ctx, spec.kind, options);
      },
      async finish(p, given, user, ctx) {
        const response = parseJson(registration, given.credential, say(spec, 'noResponse')) as RegistrationResponseJSON;
        const label = methodLabel(given.label);
        // What the browser reports is checked here too: only the kind of authenticator this method is for.
        if (response.authenticatorAttachment !== spec.attachment) throw new FactorError('invalid_input', say(spec, spec.wrongAttachment));
        const challenge = p.data.challenge;
        if (typeof challenge !== 'string') throw new FactorError('expired');
        const { rpID, origins } = rp(ctx.config);
        const { verifyRegistrationResponse } = await library();
        let result;
        try {
          result = await verifyRegistrationResponse({
            response, expectedChallenge: challenge, expectedOrigin: origins, expectedRPID: rpID,
            requireUserVerification: uvRequired, requireUserPresence: true, supportedAlgorithmIDs: algorithms(ctx.config),
          });
        } catch (err) {
          ctx.log.info({ kind: spec.kind, userId: user.id, reason: (err as Error).message }, 'passkey registration refused');
          throw new FactorError('wrong_answer', say(spec, 'refused'));
        }
        if (!result.verified) throw new FactorError('wrong_answer', say(spec, 'refused'));
        const { credential, credentialDeviceType, credentialBackedUp, aaguid, userVerified } = result.registrationInfo;
        if (uvRequired && !userVerified) throw new FactorError('wrong_answer', say(spec, 'refused'));
        const deviceHash = spec.remembersDevice ? ctx.here?.deviceHash : undefined;
        const data: CredentialData = {
          counter: credential.counter, transports: credential.transports ?? [], backupEligible: credentialDeviceType === 'multiDevice',
          backedUp: credentialBackedUp, aaguid, ...(deviceHash ? { deviceHash } : {}),
        };
        try {
          return await ctx.store.authenticators.insert({
            userId: user.id, kind: spec.kind, label: label || aaguidName(aaguid) || spec.defaultLabel,
            publicKey: Buffer.from(credential.publicKey).toString('base64url'), externalId: credential.id, data: { ...data },
          });
        } catch (err) {
          // The response was checked against its challenge: spent like an expired one, never put back.
          if (err instanceof DuplicateCredentialError) throw new FactorError('expired', say(spec, 'duplicate'));
          throw err;
        }
      },
    },

    async challenge(user, a, ctx) {
      const hints = spec.attachment === 'cross-platform' ? ['security-key'] : [];
      return challengeStep(ctx, spec.kind, await requestOptions(ctx, spec.userVerification, await factor.usable(user, ctx), hints), a.id);
    },

    async verify(p, given, ctx) {
      const response = readAssertion(given.credential, say(spec, 'noResponse'));
      const a = await ctx.store.authenticators.findByExternalId(response.id);
      // Any of the user's credentials of this kind will do; another account's, or one of another kind, never does.
      if (!a || a.kind !== spec.kind || a.userId !== p.userId) throw new FactorError('wrong_answer', say(spec, 'unknownCredential'));
      return checkAssertion(ctx, spec, a, p.data.challenge, response, uvRequired);
    },

    async view(p, _user, _ctx) {
      // Embedded in a <script type="application/json"> block: "<" escaped, so no name can close the element.
      return { form: p.authenticatorId ? spec.assertForm : 'setup', options: JSON.stringify(p.data.options ?? {}).replace(/</g, '\\u003c') };
    },
  };
  return factor;
}
