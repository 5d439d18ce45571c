/**
 * The one place that decides assurance levels. Pure functions: proofs -> { acr, amr }, and what a request needs.
 *
 * | acr                   | reached by                                                              |
 * | urn:latchkey:acr:1fa  | password (+ security question)                                          |
 * | urn:latchkey:acr:mfa  | two independent categories (password + possession)                      |
 * | phr                   | two factors with a phishing-resistant proof: a passkey or a key with    |
 * |                       | user verification (alone or after a password), a key after a password   |
 */
import { proofsByAmr } from '../factors/index.ts';
import type { Amr, Offer, Proof, ProofShape } from '../factors/types.ts';

export const ACR = { oneFactor: 'urn:latchkey:acr:1fa', mfa: 'urn:latchkey:acr:mfa', phr: 'phr' } as const;
export type Acr = (typeof ACR)[keyof typeof ACR];

/** Weakest first: a level satisfies every level at or before it. */
export const LEVELS: readonly Acr[] = [ACR.oneFactor, ACR.mfa, ACR.phr];

export function isAcr(value: unknown): value is Acr {
  return typeof value === 'string' && (LEVELS as readonly string[]).includes(value);
}

export function rank(acr: string | undefined): number {
  return acr === undefined ? -1 : (LEVELS as readonly string[]).indexOf(acr);
}

/** Does a session at `have` meet `need`? Unknown levels never satisfy anything. */
export function satisfies(have: string | undefined, need: Acr | undefined): boolean {
  if (need === undefined) return rank(have) >= 0;
  return rank(have) >= rank(need);
}

export interface Level {
  acr: Acr;
  amr: Amr[];
}

/** Derives acr and amr from what the sign-in proved. Throws when nothing was proved. */
export function levelOf(proofs: readonly Proof[], extraAmr: readonly Amr[] = []): Level {
  if (proofs.length === 0) throw new Error('a level needs at least one proof');
  const amr = new Set<Amr>();
  for (const p of proofs) for (const m of p.amr) amr.add(m);
  for (const m of extraAmr) amr.add(m);
  const categories = new Set(proofs.map((p) => p.category));
  // Two factors: two independent categories, or one proof that is two in itself (an authenticator that
  // verified its user: possession, and the face, fingerprint or PIN). A key without user verification is
  // possession only: two factors with a password, one on its own.
  const independent = categories.size >= 2 || proofs.some((p) => p.phishingResistant && p.amr.includes('user'));
  if (independent) amr.add('mfa');
  let acr: Acr = ACR.oneFactor;
  // Phishing-resistant when one of the factors is: a phished password alone cannot complete the sign-in.
  if (independent) acr = proofs.some((p) => p.phishingResistant) ? ACR.phr : ACR.mfa;
  return { acr, amr: [...amr] };
}

export interface LevelRequest {
  /** Space-separated acr_values from the request. */
  acrValues?: string | undefined;
  /** claims.id_token.acr from the claims parameter. */
  acrClaim?: { essential?: boolean; value?: unknown; values?: unknown } | null | undefined;
  /** The client's minimum level (client metadata `minimum_acr`). */
  clientMinimum?: string | undefined;
}

/**
 * The level a request needs: the weakest level among those the RP asked for (acr_values, or the essential
 * acr claim), raised to the client's minimum. Unknown values are ignored; a request naming only unknown
 * values asks for nothing beyond the minimum. Latchkey treats acr_values as a requirement, not a wish:
 * it never returns a weaker acr than one the RP named.
 */
export function requiredLevel(req: LevelRequest): Acr {
  const asked: Acr[] = [];
  const take = (v: unknown) => {
    if (isAcr(v)) asked.push(v);
  };
  req.acrValues?.split(' ').forEach(take);
  if (req.acrClaim) {
    take(req.acrClaim.value);
    if (Array.isArray(req.acrClaim.values)) req.acrClaim.values.forEach(take);
  }
  let need: Acr = ACR.oneFactor;
  if (asked.length) need = asked.reduce((a, b) => (rank(b) < rank(a) ? b : a));
  if (isAcr(req.clientMinimum) && rank(req.clientMinimum) > rank(need)) need = req.clientMinimum;
  return need;
}

/** What the user's own setting and the risk rules add to what the app asked for. */
export interface UserPolicy {
  preference: 'always' | 'risky';
  /** The user has a method of the possession kind (an authenticator app, a phone, recovery codes, …). */
  hasPossession: boolean;
  /** The user has any second-step method (the security question counts). */
  hasSecondStep: boolean;
  /** Why the risk rules find this sign-in risky; [] when it looks as usual. */
  riskReasons: readonly string[];
  /** The level the first factor reached on its own (a passkey is already above 1fa: nothing for risk to decide). */
  firstFactor: Acr;
}

export interface Requirement {
  /** The level the sign-in must reach. */
  acr: Acr;
  /** One more proof after the first factor, of any second-step kind (the step of a risky sign-in). */
  secondStep: boolean;
  /** The risk rules decided whether to ask for a second step (amr `rba`). */
  rba: boolean;
}

/**
 * The requirement of a sign-in: the app's level, raised to mfa by "verify at every sign-in" (with a
 * possession method to verify with), plus a second step of any kind when "verify only when a sign-in
 * looks risky" finds it risky. A security question alone cannot give mfa, so for a user who chose
 * "every sign-in" but has only a question, the question is asked at every sign-in.
 */
export function requirementFor(requested: Acr, policy: UserPolicy): Requirement {
  const mfa = rank(ACR.mfa);
  let acr = requested;
  if (policy.preference === 'always' && policy.hasPossession && rank(acr) < mfa) acr = ACR.mfa;
  const below = rank(acr) < mfa && rank(policy.firstFactor) < mfa;
  const risky = policy.preference === 'risky';
  return {
    acr,
    secondStep: below && policy.hasSecondStep && (risky ? policy.riskReasons.length > 0 : !policy.hasPossession),
    rba: below && risky && policy.hasSecondStep,
  };
}

/** Whether the risk rules have anything to decide for this sign-in (their reasons are gathered only then). */
export const riskDecides = (policy: Omit<UserPolicy, 'riskReasons'>): boolean =>
  requirementFor(ACR.oneFactor, { ...policy, riskReasons: [] }).rba;

/** Do these proofs meet the requirement? */
export function meets(proofs: readonly Proof[], req: Requirement): boolean {
  if (proofs.length === 0) return false;
  const { acr } = levelOf(proofs);
  if (!satisfies(acr, req.acr)) return false;
  return !req.secondStep || proofs.length >= 2 || rank(acr) > rank(ACR.oneFactor);
}

/** Would one more proof of this shape meet the requirement? (Which methods to offer for what is missing.) */
export function wouldMeet(proofs: readonly Proof[], shape: Omit<Proof, 'kind' | 'authenticatorId'>, req: Requirement): boolean {
  return meets([...proofs, { ...shape, kind: 'password', authenticatorId: '(candidate)' }], req);
}

const AMR_PROOFS = proofsByAmr();

/**
 * The proofs behind an existing session, from the amr it was granted with (which levelOf derived from
 * them): step-up inside a session asks only for what is missing and derives the new level from all of them.
 * Each value reads back as the fullest proof it starts whose every value the session holds (`hwk` with
 * `user`: a passkey or a key that verified the user; `hwk` alone: a key that did not, never more).
 * Values that are not proofs (mfa, rba) and unknown values are dropped.
 */
export function proofsFromAmr(amr: readonly unknown[] | undefined, sessionUid: string): Proof[] {
  const held = new Set((amr ?? []).filter((v): v is string => typeof v === 'string'));
  const out: Proof[] = [];
  for (const value of held) {
    const fits = (AMR_PROOFS.get(value as Amr) ?? []).filter((shape) => shape.amr.every((m) => held.has(m)));
    const proof = fits.reduce<(typeof fits)[number] | undefined>((best, shape) => (!best || shape.amr.length > best.amr.length ? shape : best), undefined);
    if (proof && !out.some((p) => p.amr[0] === proof.amr[0])) out.push({ ...proof, authenticatorId: `session:${sessionUid}` });
  }
  return out;
}

/**
 * The highest level a user can reach with these methods (and their password): what a sensitive change on
 * the account page asks for, and the level a sign-in must have reached before it may enrol a new method.
 */
export function highestReachable(shapes: readonly Omit<Proof, 'kind' | 'authenticatorId'>[]): Acr {
  const password: Proof = { kind: 'password', authenticatorId: '(password)', amr: ['pwd'], category: 'knowledge', phishingResistant: false };
  return levelOf([password, ...shapes.map((s) => ({ ...s, kind: 'password' as const, authenticatorId: '(method)' }))]).acr;
}

/** How methods are offered, first to last: the usual ones, then SMS (restricted, NIST), then recovery codes (a last resort). */
export const OFFER_ORDER: { readonly [O in Offer]: number } = { normal: 0, restricted: 1, 'last-resort': 2 };

/**
 * Methods from the strongest to the weakest, as the account page lists them: by the level each reaches with
 * the password (a passkey or a security key `phr`, an app or a phone `mfa`, a security question `1fa`), then
 * by how it is offered (SMS restricted, recovery codes a last resort), then by the level it reaches on its
 * own (a passkey always verifies its user; a key may not); otherwise in the order given.
 */
export function strongestFirst<T extends { proof: ProofShape; offer: Offer }>(methods: readonly T[]): T[] {
  const level = (m: T) => rank(highestReachable([m.proof]));
  const alone = (m: T) => rank(levelOf([{ ...m.proof, kind: 'password', authenticatorId: '(method)' }]).acr);
  return [...methods].sort((a, b) => level(b) - level(a) || OFFER_ORDER[a.offer] - OFFER_ORDER[b.offer] || alone(b) - alone(a));
}

/** The strongest level there is (a passkey; a security key after a password): what a method reaching it is marked with. */
export const reachesTop = (shape: ProofShape): boolean => highestReachable([shape]) === LEVELS.at(-1);
