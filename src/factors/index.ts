/**
 * The registry: the only list of two-step methods. Typed over every StepKind, so a kind without a module
 * fails to compile. The flow and the account page look factors up here; they never switch on names.
 */
import { recoveryCode } from './recovery-code.ts';
import { securityKey } from './security-key.ts';
import { securityQuestion } from './security-question.ts';
import { push } from './push.ts';
import { sms } from './sms.ts';
import { totp } from './totp.ts';
import { webauthn } from './webauthn.ts';
import type { User } from '../store/users.ts';
import { PASSWORD_PROOF } from './password.ts';
import type { Amr, Authenticator, Factor, FactorContext, Proof, StepKind } from './types.ts';

export const factors: { readonly [K in StepKind]: Factor<K> } = {
  'security-question': securityQuestion,
  totp,
  sms,
  push,
  webauthn,
  'security-key': securityKey,
  'recovery-code': recoveryCode,
};

/** In the order the account page lists them and "Try another way" offers them. */
export const STEP_KINDS = Object.keys(factors) as StepKind[];

export function isStepKind(value: unknown): value is StepKind {
  return typeof value === 'string' && Object.hasOwn(factors, value);
}

export function factorFor<K extends StepKind>(kind: K): Factor<K> {
  return factors[kind] as Factor<K>;
}

/** A user's method that can work now: its module and its enrolled authenticator. */
export interface Method {
  factor: Factor;
  authenticator: Authenticator;
}

/** Every usable method of the user, in registry order. */
export async function usableMethods(user: User, ctx: FactorContext): Promise<Method[]> {
  const mine = await ctx.store.authenticators.listForUser(user.id);
  const out: Method[] = [];
  for (const kind of STEP_KINDS) {
    const factor = factors[kind] as Factor;
    for (const authenticator of await factor.usable(user, ctx, mine)) out.push({ factor, authenticator });
  }
  return out;
}

/**
 * A method of the possession kind (or stronger): what mfa needs besides the password. A backup (recovery
 * codes) is not one: it exists only alongside one.
 */
export const isPossession = (factor: Factor) => factor.proof.category !== 'knowledge' && !factor.backsUp;

/** The method that backs up the possession methods (recovery codes). */
export const backupFactor = (): Factor => Object.values(factors).find((f) => f.backsUp) as Factor;

/** The methods that need `kind` to exist first (every other method needs the security question). */
export const needing = (kind: StepKind): Factor[] => (Object.values(factors) as Factor[]).filter((f) => f.needs === kind);

/**
 * How each proof shows in amr, read back (an existing session's amr, when step-up adds to it): the
 * password's and every method's shapes, by their first amr value, in registry order (several methods and
 * shapes may start with one value: `hwk` is a passkey, a key that verified the user, or one that did not).
 */
export function proofsByAmr(): ReadonlyMap<Amr, readonly Omit<Proof, 'authenticatorId'>[]> {
  const out = new Map<Amr, Omit<Proof, 'authenticatorId'>[]>([[PASSWORD_PROOF.amr[0]!, [PASSWORD_PROOF]]]);
  for (const factor of Object.values(factors) as Factor[]) {
    for (const shape of [factor.proof, ...(factor.alsoProves ?? [])]) {
      out.set(shape.amr[0]!, [...(out.get(shape.amr[0]!) ?? []), { ...shape, kind: factor.kind }]);
    }
  }
  return out;
}

/** The narrow context a factor gets: never Koa's ctx. */
export function factorContext(deps: Omit<FactorContext, 'now'> & { now?: () => number }): FactorContext {
  return { store: deps.store, sms: deps.sms, push: deps.push, config: deps.config, hasher: deps.hasher, log: deps.log, now: deps.now ?? Date.now };
}
