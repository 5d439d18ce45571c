/**
 * The console's sign-in and its own session.
 *
 * It signs in through the provider's /auth like any app (first-party/flow.ts: PKCE, state, nonce), asking
 * for `mfa`. The callback accepts a sign-in only for a user holding a console role (else a 403 page "no
 * console role") and only at the level the console needs from that user: `mfa`, or `phr` when they have a
 * passkey (`requiredLevel`). When the callback asked for less than that (the first sign-in of an
 * administrator with a passkey), it asks again for the higher level, which the provider meets by a step-up
 * in the same session; a sign-in below what was asked (a request edited on the way) is refused. Every
 * refusal is a denied audit row, every sign-in an ok one.
 *
 * The session: a random id in the signed `lk.admin` cookie (path /admin, SameSite=Strict, HttpOnly, Secure
 * behind TLS), its hash in `console_sessions`. Each request checks and touches it in one conditional
 * write (store/console-sessions.ts `use`): the provider session it came from is live for the same
 * account, at most `console.idleSeconds` since the last request and `console.absoluteSeconds` since the
 * sign-in, and its user active with a role. Anything else signs the browser out of the console.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Context, Next } from 'koa';
import { OperationError, type Actor } from '../admin/operations/actor.ts';
import { audited } from '../admin/operations/audited.ts';
import { factorContext, usableMethods } from '../factors/index.ts';
import { ADMIN_APP, homeUri } from '../first-party/app.ts';
import type { CallbackHandlers } from '../first-party/callback.ts';
import { sessionCookie, sessionCookies } from '../first-party/cookies.ts';
import { startSignIn, type Flow } from '../first-party/flow.ts';
import type { RedeemedSignIn } from '../first-party/redeem.ts';
import { requestMeta } from '../http/request-meta.ts';
import { endSession } from '../oidc/end-session.ts';
import { ACR, highestReachable, rank, satisfies, type Acr } from '../security/level.ts';
import { isRole, type Role, type User } from '../store/users.ts';
import type { ConsoleContext, ConsoleDeps, ConsoleSession } from './context.ts';

const SESSION_COOKIE = sessionCookie(ADMIN_APP);
const cookies = (deps: ConsoleDeps) => sessionCookies(deps.config, ADMIN_APP);
const hashId = (id: string) => createHash('sha256').update(`console-session:${id}`).digest('base64url');

export const consoleRoles = (user: User): Role[] => user.roles.filter(isRole);

/** The level the console needs from this user: `phr` when their methods reach it (a passkey), else `mfa`. */
export async function requiredLevel(deps: ConsoleDeps, user: User): Promise<Acr> {
  const reachable = highestReachable((await usableMethods(user, factorContext(deps))).map((m) => m.factor.proof));
  return rank(reachable) > rank(ACR.mfa) ? reachable : ACR.mfa;
}

/** The operations' actor for a console request by `user`, signed in at `acr`. */
export function consoleActor(ctx: Context, user: User, acr: string): Actor {
  const { ip, userAgent } = requestMeta(ctx);
  const requestId = typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined;
  return { via: 'console', userId: user.id, roles: consoleRoles(user), acr, ip, userAgent, ...(requestId ? { requestId } : {}) };
}

/** A denied audit row for `action` with this reason (an OperationError's code and message), and nothing else. */
export async function auditRefusal(deps: ConsoleDeps, actor: Actor, action: string, target: { type: string; id?: string | null }, code: string, message: string): Promise<void> {
  await audited(deps, actor, { action, target }, async () => {
    throw new OperationError(code, message, 403);
  }).catch((err: unknown) => {
    if (!(err instanceof OperationError)) throw err;
  });
}

/**
 * Starts a console sign-in at `mfa` (the callback asks again for more when the user can reach more), at
 * most `console.stepUpSeconds` old: a console session that ended (idle, absolute, signed out) is never
 * renewed from the provider's longer session without the password and the second step again.
 */
export function signInToConsole(deps: ConsoleDeps, ctx: Context, returnTo: string): void {
  startSignIn(deps.config, ADMIN_APP, ctx, { returnTo, acrValues: ACR.mfa, maxAge: deps.config.console.stepUpSeconds });
}

const epochNow = () => Math.floor(Date.now() / 1000);

function refused(deps: ConsoleDeps, ctx: Context, reason: 'noRole' | 'levelTooLow' | 'stale' | 'otherAccount'): 'answered' {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 403;
  ctx.type = 'html';
  ctx.body = deps.render('admin/sign-in-refused.njk', { message: deps.render.t(`console.signIn.${reason}`), reason });
  return 'answered';
}

async function beginSession(deps: ConsoleDeps, ctx: Context, signIn: RedeemedSignIn): Promise<void> {
  const jar = cookies(deps);
  const old = jar.get(ctx, SESSION_COOKIE);
  if (old) await deps.store.consoleSessions.delete(hashId(old));
  const id = randomBytes(32).toString('base64url');
  const { absoluteSeconds } = deps.config.console;
  await deps.store.consoleSessions.create({
    idHash: hashId(id), userId: signIn.accountId, oidcSessionUid: signIn.sessionUid, acr: signIn.acr, amr: signIn.amr,
    authTime: new Date(signIn.authTime * 1000), absoluteSeconds,
  });
  // Until the browser closes: the row holds the limits, and a closed browser ends the console session.
  jar.set(ctx, SESSION_COOKIE, id);
}

/** What the console's /admin/callback does with a redeemed sign-in (first-party/callback.ts). */
export function consoleCallback(deps: ConsoleDeps): CallbackHandlers {
  return {
    async signedIn(ctx: Context, signIn: RedeemedSignIn, flow: Flow) {
      // The callback found the user active.
      const user = (await deps.store.users.findById(signIn.accountId))!;
      const actor = consoleActor(ctx, user, signIn.acr);
      const target = { type: 'user', id: user.id };
      // Both only for a request edited on the way: the provider meets max_age and login_hint by asking again.
      const age = epochNow() - signIn.authTime;
      const maxAge = flow.maxAge ?? deps.config.console.stepUpSeconds;
      if (age > maxAge) {
        await auditRefusal(deps, actor, 'console.sign_in', target, 'console.sign_in_stale', `the sign-in is ${age} seconds old; the console asked for at most ${maxAge}`);
        return refused(deps, ctx, 'stale');
      }
      if (flow.account !== undefined && flow.account !== user.id) {
        await auditRefusal(deps, actor, 'console.sign_in', target, 'console.other_account', `a confirmation asked of user ${flow.account} came back signed in as another account`);
        return refused(deps, ctx, 'otherAccount');
      }
      if (!consoleRoles(user).length) {
        await auditRefusal(deps, actor, 'console.sign_in', target, 'console.no_role', 'the account holds no console role');
        return refused(deps, ctx, 'noRole');
      }
      const need = await requiredLevel(deps, user);
      if (!satisfies(signIn.acr, need)) {
        // Asked for less than this user can reach: ask again for it (a step-up in the same provider session).
        if (!satisfies(flow.acrValues, need)) {
          startSignIn(deps.config, ADMIN_APP, ctx, {
            returnTo: flow.returnTo, acrValues: need, maxAge: deps.config.console.stepUpSeconds, account: { id: user.id, email: user.email },
          });
          return 'answered';
        }
        await auditRefusal(deps, actor, 'console.sign_in', target, 'console.level_too_low', `the sign-in reached ${signIn.acr}; the console needs ${need}`);
        return refused(deps, ctx, 'levelTooLow');
      }
      await audited(deps, actor, { action: 'console.sign_in', target, outcome: () => ({ after: { acr: signIn.acr, amr: signIn.amr } }) },
        () => beginSession(deps, ctx, signIn));
      return undefined;
    },
    failed(ctx, reason) {
      ctx.type = 'html';
      ctx.body = deps.render('admin/sign-in-failed.njk', { message: deps.render.t(`console.signIn.failed.${reason}`) });
    },
  };
}

/**
 * Without a session, a page opened from a link on another site: the Strict cookie did not come with it,
 * and a sign-in started now would end in a callback that cannot see the session it makes. A page with a
 * link to the same place lets the browser come back as a navigation of this site.
 */
function fromAnotherSite(deps: ConsoleDeps, ctx: Context): boolean {
  if (ctx.method !== 'GET' || ctx.get('sec-fetch-site') !== 'cross-site') return false;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = deps.render('admin/continue.njk', { path: ctx.path });
  return true;
}

/**
 * `kit.signedIn`: the live console session and its active user holding a role into ctx.state (with the
 * request's actor), else the session ends and the browser signs in: back to this page for a GET, to the
 * console's home after a POST (nothing is changed).
 */
export function requireConsoleSession(deps: ConsoleDeps) {
  const { idleSeconds, absoluteSeconds } = deps.config.console;
  return async function consoleSession(ctx: ConsoleContext, next: Next) {
    const jar = cookies(deps);
    const id = jar.get(ctx, SESSION_COOKIE);
    const session = id ? await deps.store.consoleSessions.use(hashId(id), { idleSeconds, absoluteSeconds }) : undefined;
    const user = session ? await deps.store.users.findById(session.userId) : undefined;
    if (!session || !user || user.status !== 'active' || !consoleRoles(user).length) {
      if (id) {
        await deps.store.consoleSessions.delete(hashId(id));
        jar.clear(ctx, SESSION_COOKIE);
      }
      if (fromAnotherSite(deps, ctx)) return;
      return signInToConsole(deps, ctx, ctx.method === 'GET' ? ctx.path : ADMIN_APP.path);
    }
    await deps.store.sessions.touch(session.oidcSessionUid);
    ctx.state.session = session as ConsoleSession;
    ctx.state.user = user;
    ctx.state.actor = consoleActor(ctx, user, session.acr);
    await next();
  };
}

/**
 * "Sign out" (a POST with the console's CSRF token): the console session ends, and so does the provider
 * session it was signed in from, as a logout would. Without a live one, the provider's own logout asks.
 */
export function signOutOfConsole(deps: ConsoleDeps) {
  return async function signOut(ctx: ConsoleContext) {
    const jar = cookies(deps);
    const id = jar.get(ctx, SESSION_COOKIE);
    const ended = id ? await deps.store.consoleSessions.delete(hashId(id)) : undefined;
    jar.clear(ctx, SESSION_COOKIE);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    const user = ended ? await deps.store.users.findById(ended.userId) : undefined;
    if (!ended || !user) {
      const url = new URL(`${deps.config.issuer}/session/end`);
      url.search = new URLSearchParams({ client_id: ADMIN_APP.clientId, post_logout_redirect_uri: homeUri(deps.config, ADMIN_APP) }).toString();
      return ctx.redirect(url.toString());
    }
    await audited(deps, consoleActor(ctx, user, ended.acr), { action: 'console.sign_out', target: { type: 'user', id: user.id } }, async () => {
      const provider = deps.provider();
      const session = await provider.Session.findByUid(ended.oidcSessionUid);
      if (session && session.accountId === ended.userId) await endSession(provider, session, deps.log);
      await deps.store.accountSessions.deleteForOidcSessions(ended.userId, [ended.oidcSessionUid]);
    });
    ctx.redirect(`${deps.config.issuer}/session/end/success`);
  };
}
