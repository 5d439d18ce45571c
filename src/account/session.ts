/**
 * The account page's own session: a random id in the signed `lk.account` cookie, its hash in
 * `account_sessions`, bound to the oidc-provider session it was signed in from (it is live only while that
 * session is, checked on every request). A new one, with a new id, is made at each sign-in.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { AccountContext, AccountDeps } from './context.ts';
import { ACCOUNT_APP } from '../first-party/app.ts';
import { appCookies, sessionCookie } from '../first-party/cookies.ts';
import { startSignIn } from '../first-party/flow.ts';
import type { RedeemedSignIn } from '../first-party/redeem.ts';
import type { AccountSession } from '../store/account-sessions.ts';

const accountCookies = (config: AccountDeps['config']) => appCookies(config, ACCOUNT_APP);
const SESSION_COOKIE = sessionCookie(ACCOUNT_APP);

const hashId = (id: string) => createHash('sha256').update(`account-session:${id}`).digest('base64url');

/** Replaces this browser's account session (if any) with a new one for the sign-in just redeemed. */
export async function beginAccountSession(deps: AccountDeps, ctx: Context, signIn: RedeemedSignIn): Promise<void> {
  const cookies = accountCookies(deps.config);
  const old = cookies.get(ctx, SESSION_COOKIE);
  if (old) await deps.store.accountSessions.delete(hashId(old));
  const id = randomBytes(32).toString('base64url');
  await deps.store.accountSessions.create({
    idHash: hashId(id), userId: signIn.accountId, oidcSessionUid: signIn.sessionUid, acr: signIn.acr, amr: signIn.amr,
    authTime: new Date(signIn.authTime * 1000), ttlSeconds: deps.config.ttl.session,
  });
  cookies.set(ctx, SESSION_COOKIE, id, deps.config.ttl.session);
}

/** Ends this browser's account session; returns it when it was live (to end its oidc-provider session too). */
export async function endAccountSession(deps: AccountDeps, ctx: Context): Promise<AccountSession | undefined> {
  const cookies = accountCookies(deps.config);
  const id = cookies.get(ctx, SESSION_COOKIE);
  const live = id ? await deps.store.accountSessions.findLive(hashId(id)) : undefined;
  if (id) await deps.store.accountSessions.delete(hashId(id));
  cookies.clear(ctx, SESSION_COOKIE);
  return live;
}

/**
 * Loads the account session and its active user into ctx.state, or sends the browser to sign in and come
 * back: to this page for a GET, to the account home after a refused POST (nothing is changed).
 */
export function requireAccount(deps: AccountDeps) {
  return async function accountSession(ctx: AccountContext, next: Next) {
    ctx.set('Cache-Control', 'no-store');
    const id = accountCookies(deps.config).get(ctx, SESSION_COOKIE);
    const account = id ? await deps.store.accountSessions.findLive(hashId(id)) : undefined;
    const user = account ? await deps.store.users.findById(account.userId) : undefined;
    if (!account || !user || user.status !== 'active') {
      if (account) await deps.store.accountSessions.delete(account.idHash);
      return startSignIn(deps.config, ACCOUNT_APP, ctx, { returnTo: ctx.method === 'GET' ? ctx.path : ACCOUNT_APP.path });
    }
    await deps.store.accountSessions.touch(account.idHash);
    await deps.store.sessions.touch(account.oidcSessionUid);
    ctx.state.account = account;
    ctx.state.user = user;
    await next();
  };
}
