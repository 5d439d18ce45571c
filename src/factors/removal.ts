/**
 * Removing two-step methods, the one rule the account page and a help-desk reset share: recovery codes
 * back up the possession methods, so they go with the last of them (or when they are removed on their
 * own). Whether a removal is allowed is the caller's to decide (the account page asks the user's
 * preference and apps; a help-desk reset removes what the user lost).
 */
import type { Store } from '../store/index.ts';
import { backupFactor, factorFor, isPossession, isStepKind } from './index.ts';
import type { Authenticator, Factor, FactorContext } from './types.ts';

/** A method that gives mfa with the password (not the security question, not the recovery codes). */
export const isPossessionMethod = (a: Pick<Authenticator, 'kind'>) => isStepKind(a.kind) && isPossession(factorFor(a.kind) as Factor);

/** Whether removing `targets` leaves the user without a possession method they had. */
export function takesLastPossession(all: readonly Authenticator[], targets: readonly Authenticator[]): boolean {
  const gone = new Set(targets.map((a) => a.id));
  return targets.some(isPossessionMethod) && !all.some((a) => !gone.has(a.id) && isPossessionMethod(a));
}

/**
 * Removes `targets` of the user, and the recovery codes with the last possession method; says whether the
 * codes went.
 */
export async function removeMethods(store: Store, userId: string, targets: readonly Authenticator[]): Promise<{ backupRemoved: boolean }> {
  const backup = backupFactor();
  const lastPossession = takesLastPossession(await store.authenticators.listForUser(userId), targets);
  for (const target of targets) await store.authenticators.remove(userId, target.id);
  if (!lastPossession && !targets.some((a) => a.kind === backup.kind)) return { backupRemoved: false };
  await store.authenticators.removeKind(userId, backup.kind);
  await store.codes.replaceSet('recovery_code', userId, [], 1);
  return { backupRemoved: true };
}

/** The ids of the user's methods that cannot be used now, by their factors' say (factors/types.ts `outOfUse`). */
export async function outOfUseAmong(all: readonly Authenticator[], ctx: FactorContext): Promise<Set<string>> {
  const out = new Set<string>();
  for (const kind of new Set(all.map((a) => a.kind))) {
    if (!isStepKind(kind)) continue;
    const factor = factorFor(kind) as Factor;
    if (!factor.outOfUse) continue;
    for (const id of await factor.outOfUse(all.filter((a) => a.kind === kind), ctx)) out.add(id);
  }
  return out;
}
