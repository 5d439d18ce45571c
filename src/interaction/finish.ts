/**
 * The ONE place a sign-in is granted: `login` hands oidc-provider the account with the level derived from
 * the proofs (level.ts), never a level assigned by a caller. Consent and refusal finish here too, so
 * every end of an interaction is in this file.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Amr, Proof } from '../factors/types.ts';
import { levelOf } from './level.ts';

/**
 * `keepLogin`: the consent step keeps the login this same request completed just before it; without it a
 * prompt=login request would ask for the password (and the second step) again after the consent page.
 */
async function redirectTo(ctx: Context, provider: Provider, result: Parameters<Provider['interactionResult']>[2], keepLogin = false) {
  const url = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: keepLogin });
  ctx.status = 303;
  ctx.redirect(url);
}

export async function finishLogin(
  ctx: Context,
  provider: Provider,
  sign: { accountId: string; proofs: readonly Proof[]; extraAmr?: readonly Amr[] },
): Promise<void> {
  const { acr, amr } = levelOf(sign.proofs, sign.extraAmr);
  // ts: auth_time is this moment, also when the consent step re-applies the login (keepLogin).
  await redirectTo(ctx, provider, { login: { accountId: sign.accountId, acr, amr, remember: true, ts: Math.floor(Date.now() / 1000) } });
}

export async function finishConsent(ctx: Context, provider: Provider, grantId: string): Promise<void> {
  await redirectTo(ctx, provider, { consent: { grantId } }, true);
}

/** Ends the interaction with an OAuth error for the relying party (e.g. access_denied on cancel). */
export async function finishWithError(ctx: Context, provider: Provider, error: string, description: string): Promise<void> {
  await redirectTo(ctx, provider, { error, error_description: description });
}
