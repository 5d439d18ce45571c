/**
 * The one place that decides assurance levels. Pure functions: proofs -> { acr, amr }, and what a request needs.
 *
 * | acr                   | reached by                                         |
 * | urn:latchkey:acr:1fa  | password (+ security question)                     |
 * | urn:latchkey:acr:mfa  | two independent categories (password + possession) |
 * | phr                   | a phishing-resistant proof with user verification  |
 */
import type { Amr, Proof } from '../factors/types.ts';

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
  const independent = categories.size >= 2 || proofs.some((p) => p.phishingResistant && p.amr.includes('user'));
  if (independent) amr.add('mfa');
  let acr: Acr = ACR.oneFactor;
  if (categories.size >= 2) acr = ACR.mfa;
  if (proofs.some((p) => p.phishingResistant && p.amr.includes('user'))) acr = ACR.phr;
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
