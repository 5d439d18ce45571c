/**
 * <app path>/callback: the provider sends the browser back here with a code (or an error). The sign-in in
 * progress is taken out of its cookie, the state and issuer are checked, the code is redeemed in-process,
 * and the app's own session begins (`signedIn`) before the browser returns to the page it came from.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { requestMeta } from '../http/request-meta.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import { callbackUri, type FirstPartyApp } from './app.ts';
import { takeFlow, type Flow } from './flow.ts';
import { redeemCode, type RedeemedSignIn } from './redeem.ts';

export interface CallbackDeps {
  config: Config;
  store: Store;
  log: Logger;
  provider: () => Provider;
}

export interface CallbackHandlers {
  /**
   * The code was redeemed for an active user: begin the app's own session, and the browser goes back to
   * the page it came from. `'answered'`: the handler refused the sign-in or sent the browser elsewhere
   * itself (the console's level and role checks), and nothing else happens.
   */
  signedIn(ctx: Context, signIn: RedeemedSignIn, flow: Flow): Promise<void | 'answered'>;
  /** The page that says the sign-in did not come back: a known provider error, or 'other'. */
  failed(ctx: Context, reason: 'access_denied' | 'unmet_authentication_requirements' | 'login_required' | 'other'): void;
}

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Errors from the provider that have their own message; anything else (and our own refusals) reads "try again". */
const KNOWN_ERRORS = new Set(['access_denied', 'unmet_authentication_requirements', 'login_required']);

export function firstPartyCallback(deps: CallbackDeps, app: FirstPartyApp, handlers: CallbackHandlers) {
  const failed = (ctx: Context, reason: string) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 400;
    handlers.failed(ctx, (KNOWN_ERRORS.has(reason) ? reason : 'other') as Parameters<CallbackHandlers['failed']>[1]);
  };
  return async function callback(ctx: Context) {
    const flow = takeFlow(deps.config, app, ctx);
    const q = ctx.query;
    const state = typeof q.state === 'string' ? q.state : '';
    if (!flow || !state || !sameText(state, flow.state)) return failed(ctx, 'flow_expired');
    if (q.iss !== deps.config.issuer) return failed(ctx, 'issuer');
    if (typeof q.error === 'string') return failed(ctx, q.error);
    if (typeof q.code !== 'string') return failed(ctx, 'no_code');

    let signIn;
    try {
      signIn = await redeemCode(deps.provider(), app, q.code, {
        redirectUri: callbackUri(deps.config, app), verifier: flow.verifier, nonce: flow.nonce,
      });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      deps.log.warn({ reason: err.message, app: app.id }, 'first-party code refused');
      return failed(ctx, 'code');
    }
    const user = await deps.store.users.findById(signIn.accountId);
    if (!user || user.status !== 'active') return failed(ctx, 'other');

    if ((await handlers.signedIn(ctx, signIn, flow)) === 'answered') return;
    const meta = requestMeta(ctx);
    await deps.store.sessions.recordActivity({ sessionUid: signIn.sessionUid, userId: user.id, ip: meta.ip, userAgent: meta.userAgent });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${deps.config.issuer}${flow.returnTo}`);
  };
}
