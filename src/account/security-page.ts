/**
 * What "Password & security" shows: when to ask for verification, and one card per two-step method, from the
 * strongest to the weakest (security/level.ts `strongestFirst`), each with its state (on, off, or needing
 * another method first), when it was last used and what can be done with it. Everything a card shows comes
 * from the factor's traits (`needs`, `backsUp`, `enrolment`, `multiple`, its proof and offer), never from
 * its name; a method's own parts are views/factors/<kind>/manage.njk.
 */
import { factorContext, factorFor, isPossession, STEP_KINDS, usableMethods } from '../factors/index.ts';
import type { Authenticator, Factor, Here } from '../factors/types.ts';
import { hereOf } from '../security/device.ts';
import { reachesTop, strongestFirst } from '../security/level.ts';
import type { User, VerificationPreference } from '../store/users.ts';
import type { AccountContext, AccountDeps } from './context.ts';
import { formatTime, renderPage } from './page.ts';

/** The two answers to "when to ask for verification", in the order the page offers them. */
export const PREFERENCES: readonly VerificationPreference[] = ['always', 'risky'];

/** A card's state: on (enrolled), off (can be set up, or waits for the method it backs up), or needing another method first. */
export type MethodState = 'on' | 'off' | 'needs';

/** Why this method cannot be added yet (the method it needs first is missing), or undefined. */
export function missingPrerequisite(deps: AccountDeps, factor: Factor, mine: readonly Authenticator[]): string | undefined {
  return factor.needs && !mine.some((a) => a.kind === factor.needs) ? deps.render.t(`account.twoStep.needs.${factor.needs}`) : undefined;
}

/** The user has a method that gives mfa with the password (an authenticator app, a phone, a passkey). */
export async function hasPossession(deps: AccountDeps, user: User): Promise<boolean> {
  return (await usableMethods(user, factorContext(deps))).some((m) => isPossession(m.factor));
}

const latest = (dates: readonly (Date | null | undefined)[]): Date | undefined =>
  dates.reduce<Date | undefined>((best, d) => (d && (!best || d > best) ? d : best), undefined);

/** What the "Password & security" page lists; `here`: this browser's device, when the page is for it. */
export async function securityOverview(deps: AccountDeps, user: User, here?: Here) {
  const { t } = deps.render;
  const all = await deps.store.authenticators.listForUser(user.id);
  const fctx = factorContext(deps);
  // What a method's own part shows of each item besides its name (a phone's state): one call per kind that has any.
  const details = new Map<string, Record<string, unknown>>();
  for (const kind of STEP_KINDS) {
    const factor = factorFor(kind) as Factor;
    const mine = all.filter((a) => a.kind === kind);
    if (!factor.describe || !mine.length) continue;
    for (const [id, d] of await factor.describe(mine, fctx)) {
      details.set(id, Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v instanceof Date ? formatTime(v) : v])));
    }
  }
  const sections = strongestFirst(STEP_KINDS.map((kind) => factorFor(kind) as Factor)).map((factor) => {
    const { kind } = factor;
    const mine = all.filter((a) => a.kind === kind);
    const items = mine.map((a) => ({ id: a.id, label: a.label, addedAt: formatTime(a.createdAt), lastUsed: formatTime(a.lastUsedAt), details: details.get(a.id) ?? {} }));
    const blocked = missingPrerequisite(deps, factor, all);
    // One made on this device already: nothing to add here ("This device is set up").
    const setUpHere = !!here && mine.some((a) => factor.madeHere?.(a, here));
    const state: MethodState = items.length ? 'on' : blocked ? 'needs' : 'off';
    return {
      kind, items, blocked, setUpHere, state,
      /** The method to set up first, while it is missing. */
      needs: state === 'needs' ? factor.needs : undefined,
      stateLabel: state === 'needs' ? t(`account.twoStep.needsFirst.${factor.needs}`) : t(`account.twoStep.state.${state}`),
      canAdd: !blocked && !setUpHere && (factor.multiple || items.length === 0),
      multiple: factor.multiple,
      enrolment: factor.enrolment,
      lastUsed: formatTime(latest(mine.map((a) => a.lastUsedAt))),
      // The strongest level marks the strongest method; a restricted offer (SMS) marks the weaker backup.
      strength: reachesTop(factor.proof) ? 'strongest' : factor.offer === 'restricted' ? 'weaker' : undefined,
    };
  });
  const recoveryLeft = await deps.store.codes.countLive('recovery_code', user.id);
  return { sections, hasPossession: await hasPossession(deps, user), recoveryLeft, recoveryTotal: deps.config.twoStep.recoveryCodes.count };
}

/**
 * Renders "Password & security" for this browser, with the user's saved preference unless `vars` carries the
 * one just chosen (shown back with `preferenceError`), and any `error` of a change that was refused.
 */
export async function renderSecurityPage(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200): Promise<void> {
  renderPage(deps, ctx, 'account/security.njk', 'security', {
    ...(await securityOverview(deps, ctx.state.user, hereOf(deps.config, ctx))),
    preferences: PREFERENCES,
    preference: ctx.state.user.verificationPreference,
    ...vars,
  }, status);
}
