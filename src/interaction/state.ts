/**
 * A sign-in in progress, typed: who is signing in, what they proved, what the sign-in needs and why.
 * It lives in `sign_in_progress` between requests (store/sign-in-progress.ts) while a second step or the
 * passkey offer waits; this file is the one place that reads it back into a SignInState and writes it.
 */
import { factorContext, usableMethods, type Method } from '../factors/index.ts';
import type { Proof } from '../factors/types.ts';
import type { User } from '../store/users.ts';
import type { InteractionDeps } from './context.ts';
import type { Requirement } from '../security/level.ts';
import type { RiskReason } from './risk.ts';
import type { Progress } from '../store/sign-in-progress.ts';
import { takeAccountRead, takeProgressRead } from '../oidc/adapter.ts';

export interface SignInState {
  user: User;
  proofs: Proof[];
  requirement: Requirement;
  /** Why the risk rules asked for a second step ([] when they did not). */
  reasons: RiskReason[];
  /**
   * The sign-in page's script found a platform authenticator (face, fingerprint) on this device (true),
   * found none (false), or never said (null: no script ran, or a step-up without the sign-in page).
   */
  passkeyCapable: boolean | null;
  /** "Keep me signed in" was ticked: a long session cookie; else one that ends when the browser closes. */
  keepSignedIn: boolean;
}

const loaded = new WeakMap<User, Promise<Method[]>>();

/**
 * The user's usable methods, loaded once per request: a request loads its user once (loadSignIn, or the
 * first factor), and every step of the same request asks this instead of the database again.
 */
export function methodsOf(deps: InteractionDeps, user: User): Promise<Method[]> {
  let methods = loaded.get(user);
  if (!methods) loaded.set(user, (methods = usableMethods(user, factorContext(deps))));
  return methods;
}

/** The sign-in in progress of interaction `uid`: as this request read it with the interaction (load.ts), or read now. */
export async function findProgress(deps: InteractionDeps, uid: string): Promise<Progress | undefined> {
  const read = takeProgressRead(uid);
  return read ? read.progress : deps.store.progress.find(uid);
}

/** The binding of the pending steps (challenges) of one interaction. */
export const stepBinding = (uid: string) => `interaction:${uid}`;

/**
 * The sign-in in progress for this interaction, of an active user: one still waiting on its second step
 * (`complete: false`), or one that is finished and waits on the passkey offer (`complete: true`).
 */
export async function loadSignIn(deps: InteractionDeps, uid: string, complete: boolean): Promise<SignInState | undefined> {
  const progress = await findProgress(deps, uid);
  if (!progress || progress.complete !== complete) return undefined;
  // Read with the interaction (load.ts, oidc/adapter.ts), or now.
  const read = takeAccountRead(progress.userId);
  const user = read ? read.user : await deps.store.users.findById(progress.userId);
  if (!user || user.status !== 'active') return undefined;
  return {
    user,
    proofs: progress.proofs as Proof[],
    requirement: progress.requirement as unknown as Requirement,
    reasons: progress.reasons as RiskReason[],
    passkeyCapable: progress.passkeyCapable,
    keepSignedIn: progress.keepSignedIn,
  };
}

/** Keeps the sign-in for this interaction until the next request (`complete`: only the passkey offer is left). */
export async function saveSignIn(deps: InteractionDeps, uid: string, state: SignInState, complete: boolean): Promise<void> {
  await deps.store.progress.start({
    interactionUid: uid, userId: state.user.id, proofs: state.proofs, reasons: state.reasons,
    requirement: { ...state.requirement }, passkeyCapable: state.passkeyCapable, keepSignedIn: state.keepSignedIn, complete,
  }, deps.config.twoStep.stepTtlSeconds);
}
