/**
 * Sensitive changes (email, password, two-step verification) need a recent sign-in at the highest level the
 * user can reach: `auth_time` at most `account.recentAuthSeconds` old (default 600) and `acr` at that level.
 * Otherwise the browser is sent through the provider's /auth with `max_age` and `acr_values` (so every
 * sign-in rule, step-up and risk check applies) and comes back to the same page. A POST that arrives too
 * late changes nothing: the user signs in again and submits again.
 */
import type { Next } from 'koa';
import { factorContext, isPossession, usableMethods } from '../factors/index.ts';
import type { Authenticator, Factor, Proof } from '../factors/types.ts';
import { highestReachable, levelOf, proofsFromAmr, satisfies, type Acr } from '../security/level.ts';
import type { AccountSession } from '../store/account-sessions.ts';
import type { User } from '../store/users.ts';
import type { AccountContext, AccountDeps } from './context.ts';
import { ACCOUNT_APP } from '../first-party/app.ts';
import { startSignIn } from '../first-party/flow.ts';

/**
 * The level a sensitive change needs: the highest the user can reach (level.ts highestReachable): `phr`
 * with a passkey, `mfa` with another possession method (an authenticator app, a phone, recovery codes),
 * `1fa` until then (DESIGN.md). A security question is knowledge and never lifts a sign-in above 1fa, but
 * under "only when risky" a sign-in from a device or network the account does not know is asked for it,
 * so a stolen password alone cannot enrol a method.
 */
export async function requiredLevel(deps: AccountDeps, user: User): Promise<Acr> {
  return highestReachable((await usableMethods(user, factorContext(deps))).map((m) => m.factor.proof));
}

/**
 * A method just added by proving it (a passkey made with face or fingerprint, an authenticator app's or a
 * phone's code typed back) is a fresh proof of possession: with what the session proved at its sign-in it
 * counts as a recent sign-in at the level they prove together, so the next change does not ask for the
 * same thing again. Never lowers the session's level.
 */
export async function countAsRecentSignIn(deps: AccountDeps, ctx: AccountContext, factor: Factor, added: Authenticator): Promise<void> {
  if (!isPossession(factor) || factor.backsUp || factor.enrolment !== 'form') return;
  const session = ctx.state.account;
  const proofs: Proof[] = [...proofsFromAmr(session.amr, session.oidcSessionUid), { ...factor.proof, kind: factor.kind, authenticatorId: added.id }];
  const level = levelOf(proofs);
  if (!satisfies(level.acr, session.acr as Acr)) return;
  await deps.store.accountSessions.raise(session.idHash, level.acr, level.amr);
}

/** Whole seconds, like `auth_time` and oidc-provider's `max_age` check. */
const epochNow = () => Math.floor(Date.now() / 1000);

export function isRecent(session: AccountSession, need: Acr, maxAgeSeconds: number, now = epochNow()): boolean {
  const authTime = Math.floor(session.authTime.getTime() / 1000);
  return satisfies(session.acr, need) && now - authTime <= maxAgeSeconds;
}

/** A step after `requireAccount`: continues when the sign-in is recent, else re-authenticates and returns to `page`. */
export function requireRecentAuth(deps: AccountDeps, page: string | ((ctx: AccountContext) => string)) {
  return async function recentAuth(ctx: AccountContext, next: Next) {
    const need = await requiredLevel(deps, ctx.state.user);
    const maxAge = deps.config.account.recentAuthSeconds;
    if (isRecent(ctx.state.account, need, maxAge)) return next();
    return startSignIn(deps.config, ACCOUNT_APP, ctx, { returnTo: typeof page === 'string' ? page : page(ctx), maxAge, acrValues: need });
  };
}
