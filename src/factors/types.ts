/**
 * The factor contract. Every two-step method is one module behind `Factor`, listed once in the registry
 * (index.ts); the sign-in flow, the account page and the admin API only talk to this interface. What a
 * factor proves is a `Proof`; the level (acr) is derived from a list of proofs, never assigned
 * (security/level.ts). Factors never render and never see Koa's ctx: they get a narrow FactorContext.
 */
import type { Config } from '../config.ts';
import type { PushSender } from '../delivery/push.ts';
import type { SmsSender } from '../delivery/sms.ts';
import type { PromptOrigin } from '../push/prompts.ts';
import type { Logger } from '../log.ts';
import type { Authenticator } from '../store/authenticators.ts';
import type { Store } from '../store/index.ts';
import type { User } from '../store/users.ts';
import type { PasswordHasher } from './password.ts';

export type { Authenticator };

/**
 * Every kind of proof a sign-in can hold. The password is the identifying first step with its own module
 * (password.ts: the decoy hash, the enumeration rules); every other kind is a `Factor` in the registry.
 */
export type FactorKind = 'password' | StepKind;
/** The kinds behind the Factor interface: one module each in the registry. */
export type StepKind = 'security-question' | 'totp' | 'sms' | 'push' | 'webauthn' | 'security-key' | 'recovery-code';

/** RFC 8176 authentication method reference values used by Latchkey. */
export type Amr = 'pwd' | 'kba' | 'otp' | 'sms' | 'mca' | 'hwk' | 'swk' | 'user' | 'mfa' | 'rba';

export type FactorCategory = 'knowledge' | 'possession' | 'inherence';

/** What a successful verify proves. */
export interface Proof {
  kind: FactorKind;
  authenticatorId: string;
  amr: readonly Amr[];
  category: FactorCategory;
  phishingResistant: boolean;
}

/** What a proof of this factor would look like, before anyone proved anything (to pick the methods that meet a need). */
export type ProofShape = Omit<Proof, 'kind' | 'authenticatorId'>;

/** Between challenge and verify: kept in the database (store/pending-steps.ts), bound to one sign-in or account session. */
export interface Pending<K extends StepKind = StepKind> {
  id: string;
  kind: K;
  userId: string;
  authenticatorId?: string | undefined;
  /** Never secret in the clear: a code is kept as a keyed hash, a seed in `secret` (sealed at rest). */
  data: Record<string, unknown>;
  secret?: string | undefined;
  attemptsLeft: number;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** An answer on another channel (a phone's prompt): resolved as approved or denied, and by what. */
  status?: 'waiting' | 'approved' | 'denied';
  resolvedBy?: string | undefined;
}

/** A challenge to store (store/pending-steps.ts binds it to the sign-in or account session and gives it its id). */
export interface Step<K extends StepKind = StepKind> {
  kind: K;
  authenticatorId?: string | undefined;
  data: Record<string, unknown>;
  /** Sealed at rest: a TOTP seed during enrolment, recovery codes until they are confirmed saved. */
  secret?: string | undefined;
  /** Wrong answers this challenge takes before it is dead (each one also counts on the account's failure counter). */
  attempts: number;
  ttlSeconds: number;
}

/** What the page for a pending step shows: `form` names the template part (views/factors/<kind>/<form>.njk). */
export type View = Record<string, unknown> & { form: string };

export interface FactorContext {
  store: Store;
  sms: SmsSender;
  config: Config;
  hasher: PasswordHasher;
  log: Logger;
  now: () => number;
  /** The device the request comes from, where the caller knows it (a passkey remembers where it was made). */
  here?: Here;
  /** Sends Web Push to the phone app. */
  push: PushSender;
  /** Where the request came from, as a phone prompt shows it (the second step sets it). */
  origin?: PromptOrigin;
}

/** What is known of the device a sign-in or an enrolment happens on. */
export interface Here {
  /** A platform authenticator (face, fingerprint) exists here: true, false, or null when unknown. */
  platformAuthenticator: boolean | null;
  /** The hash of this browser's device cookie (security/device.ts), when it has one. */
  deviceHash: string | undefined;
}

/**
 * Stable failure codes. `unavailable` (no phone, the provider down) makes the page offer another method;
 * `wrong_answer` and `replayed` (an answer checked and refused) count on the account's failure counter;
 * `limited` is a resend asked for too soon; `denied`: the person said no on another channel (a phone's
 * "Cancel" or "This wasn't me"), which ends the sign-in.
 */
export type FactorErrorCode = 'invalid_input' | 'wrong_answer' | 'expired' | 'replayed' | 'unavailable' | 'locked' | 'limited' | 'denied';

export class FactorError extends Error {
  override name = 'FactorError';
  constructor(
    readonly code: FactorErrorCode,
    /** A string key for the message shown to the user (locales/en.json), with its values. */
    readonly messageKey: string = `factors.errors.${code}`,
    readonly vars: Record<string, unknown> = {},
  ) {
    super(code);
  }

  /** An answer that was checked and was wrong (a guess): counted on the shared failure counter. */
  get counts(): boolean {
    return this.code === 'wrong_answer' || this.code === 'replayed';
  }
}

/** How a method is offered on the sign-in page: SMS is restricted (never the default when another exists), recovery codes a last resort. */
export type Offer = 'normal' | 'restricted' | 'last-resort';

export interface Factor<K extends StepKind = StepKind, Input = unknown> {
  readonly kind: K;
  readonly proof: ProofShape;
  /** Other shapes a proof of this method can take (a synced passkey proves `swk`, not `hwk`). */
  readonly alsoProves?: readonly ProofShape[];
  readonly offer: Offer;
  /** The method that must exist before this one can be added (the security question, for every other one). */
  readonly needs?: StepKind;
  /**
   * Backs up the possession methods (recovery codes): made with the first of them, removed with the last,
   * added only while one exists, and never counted as one itself.
   */
  readonly backsUp: boolean;
  /** `form`: added by answering one or more pages (a phone, then its code); `generated`: made in one go. */
  readonly enrolment: 'form' | 'generated';
  /** More than one of this kind per user (two authenticator apps), or one at most (a security question). */
  readonly multiple: boolean;
  /**
   * A challenge takes one answer, and after a refused one a new challenge is made at once (a passkey's
   * challenges cost nothing); otherwise a challenge takes a few answers, and once they are used up the
   * user chooses again (a new SMS costs a message).
   */
  readonly challengeOnce: boolean;
  /**
   * The answer arrives on another channel (a phone's prompt): the page waits for it, and asking before it
   * came (verify throws FactorError 'invalid_input') is no failure; a challenge that ended (FactorError
   * 'expired') offers a new one on the same page.
   */
  readonly answeredElsewhere?: boolean;
  /** Edge validation of a submitted form into this factor's input. Throws FactorError('invalid_input'). */
  parse(body: Record<string, string>): Input;
  /**
   * The user's enrolled methods of this kind that can work now; [] means offer another. `mine`: the user's
   * authenticators when the caller has them already (one query for every kind).
   */
  usable(user: User, ctx: FactorContext, mine?: readonly Authenticator[]): Promise<Authenticator[]>;
  /**
   * Why this method cannot work on this device (a strings key), or undefined when it may: the second step
   * never opens on it here and lists it under "Try another way" with the reason. Only what is known counts.
   */
  cannotWorkHere?(a: Authenticator, here: Here): string | undefined;
  /**
   * The method was made on another device and probably stays there (a passkey that is not synced): it may
   * still work here (another browser on the same computer shares its authenticator), so it is not ruled
   * out, but the second step opens on another method first.
   */
  madeElsewhere?(a: Authenticator, here: Here): boolean;
  /** The method was made on this very device (so "add this device too" has nothing to add here). */
  madeHere?(a: Authenticator, here: Here): boolean;
  enroll: {
    begin(user: User, ctx: FactorContext): Promise<Step<K>>;
    /** A new method, or the next step of a multi-step enrolment (a phone number, then its code). */
    finish(p: Pending<K>, input: Input, user: User, ctx: FactorContext): Promise<Authenticator | Step<K>>;
  };
  /** Sends the SMS, picks the question, …; throws FactorError('unavailable') when it cannot work now. */
  challenge(user: User, a: Authenticator, ctx: FactorContext): Promise<Step<K>>;
  /**
   * Of the user's methods of this kind, the ids of those that cannot be used now (a phone whose app signed
   * out): they do not count as the method a rule needs (the last one "verify at every sign-in" keeps).
   */
  outOfUse?(methods: readonly Authenticator[], ctx: FactorContext): Promise<Set<string>>;
  /** After the challenge is stored (a phone prompt is sent once it exists for the phone to fetch). */
  challenged?(user: User, p: Pending<K>, ctx: FactorContext): Promise<void>;
  /** Throws FactorError on any failure. */
  verify(p: Pending<K>, input: Input, ctx: FactorContext): Promise<Proof>;
  /**
   * How far an enrolment step got on another channel (a phone pairing: `waiting`, `paired`, `confirmed`),
   * for the page that waits on it.
   */
  enrolStatus?(p: Pending<K>, user: User, ctx: FactorContext): Promise<EnrolStatus>;
  /**
   * What the account page shows of each of these methods besides its name (a phone's state, when it was
   * last seen), by authenticator id: one call for all of a user's methods of this kind.
   */
  describe?(methods: readonly Authenticator[], ctx: FactorContext): Promise<Map<string, Record<string, unknown>>>;
  /** A method was renamed on the account page (a paired phone takes the new name too). */
  renamed?(a: Authenticator, label: string, ctx: FactorContext): Promise<void>;
  /** What the page for this pending step shows (also after a wrong answer, from the same pending). */
  view(p: Pending<K>, user: User, ctx: FactorContext): Promise<View>;
}

/** How far an enrolment answered on another channel got, and what the page shows meanwhile (a number to type on the phone). */
export interface EnrolStatus {
  state: string;
  number?: string | undefined;
}

export const isStep = <K extends StepKind>(value: Authenticator | Step<K>): value is Step<K> => 'ttlSeconds' in value;
