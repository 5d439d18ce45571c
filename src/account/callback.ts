/**
 * /account/callback: the provider sends the browser back here with a code (or an error). The sign-in in
 * progress is taken out of its cookie, the state and issuer are checked, the code is redeemed in-process,
 * and a new account session replaces any old one before the browser returns to the page it came from.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';
import { AppError } from '../errors.ts';
import { accountCallbackUri } from '../oidc/account-client.ts';
import { requestMeta, type AccountDeps } from './context.ts';
import { redeemAccountCode } from './redeem.ts';
import { beginAccountSession } from './session.ts';
import { takeFlow } from './sign-in.ts';

const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** Errors from the provider that have their own message; anything else (and our own refusals) reads "try again". */
const KNOWN_ERRORS = new Set(['access_denied', 'unmet_authentication_requirements', 'login_required']);

function failed(deps: AccountDeps, ctx: Context, reason: string) {
  const { t } = deps.render;
  ctx.set('Cache-Control', 'no-store');
  ctx.status = 400;
  ctx.type = 'html';
  ctx.body = deps.render('account/sign-in-failed.njk', {
    message: t(`account.signInFailed.${KNOWN_ERRORS.has(reason) ? reason : 'other'}`),
  });
}

export function callback(deps: AccountDeps) {
  return async function accountCallback(ctx: Context) {
    const flow = takeFlow(deps, ctx);
    const q = ctx.query;
    const state = typeof q.state === 'string' ? q.state : '';
    if (!flow || !state || !sameText(state, flow.state)) return failed(deps, ctx, 'flow_expired');
    if (q.iss !== deps.config.issuer) return failed(deps, ctx, 'issuer');
    if (typeof q.error === 'string') return failed(deps, ctx, q.error);
    if (typeof q.code !== 'string') return failed(deps, ctx, 'no_code');

    let signIn;
    try {
      signIn = await redeemAccountCode(deps.provider(), q.code, {
        redirectUri: accountCallbackUri(deps.config), verifier: flow.verifier, nonce: flow.nonce,
      });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      deps.log.warn({ reason: err.message }, 'account page code refused');
      return failed(deps, ctx, 'code');
    }
    const user = await deps.store.users.findById(signIn.accountId);
    if (!user || user.status !== 'active') return failed(deps, ctx, 'other');

    await beginAccountSession(deps, ctx, signIn);
    const meta = requestMeta(ctx);
    await deps.store.sessions.recordActivity({ sessionUid: signIn.sessionUid, userId: user.id, ip: meta.ip, userAgent: meta.userAgent });
    ctx.set('Cache-Control', 'no-store');
    ctx.status = 303;
    ctx.redirect(`${deps.config.issuer}${flow.returnTo}`);
  };
}
