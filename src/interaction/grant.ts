/**
 * The ONE place a sign-in is granted. `loginResult` derives the level from the proofs (level.ts), never a
 * level assigned by a caller, and refuses outright a grant whose proofs do not meet its requirement, so
 * no path can hand out less than the sign-in needed. `grantLogin` gives that result to oidc-provider at the
 * end of an interaction; a grant on another path (an approval on the back channel, for CIBA) will take the
 * same `loginResult`. Consent and refusal end interactions here too, so every end of one is in this file.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Amr, Proof } from '../factors/types.ts';
import { levelOf, meets, type Acr, type Requirement } from '../security/level.ts';

/** What a grant is made of: whose sign-in, what they proved, and what the sign-in had to reach. */
export interface Grant {
  accountId: string;
  proofs: readonly Proof[];
  requirement: Requirement;
  /** amr values earned by how the sign-in was decided rather than by a proof (`rba`). */
  extraAmr?: readonly Amr[];
  /** A long session cookie ("Keep me signed in", the default), or false for one that ends with the browser. */
  remember?: boolean;
}

export type LoginResult = {
  accountId: string;
  acr: Acr;
  amr: Amr[];
  remember: boolean;
  /** auth_time: this moment, also when the consent step re-applies the login. */
  ts: number;
};

/** The login to hand oidc-provider for this grant; throws when the proofs do not meet its requirement. */
export function loginResult(grant: Grant): LoginResult {
  if (!meets(grant.proofs, grant.requirement)) {
    throw new Error(`refused to grant a sign-in below its requirement (${grant.requirement.acr})`);
  }
  const { acr, amr } = levelOf(grant.proofs, grant.extraAmr);
  return { accountId: grant.accountId, acr, amr: [...amr], remember: grant.remember ?? true, ts: Math.floor(Date.now() / 1000) };
}

/**
 * `keepLogin`: the consent step keeps the login this same request completed just before it; without it a
 * prompt=login request would ask for the password (and the second step) again after the consent page.
 */
async function redirectTo(ctx: Context, provider: Provider, result: Parameters<Provider['interactionResult']>[2], keepLogin = false) {
  const url = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: keepLogin });
  ctx.status = 303;
  ctx.redirect(url);
}

/** Grants the sign-in of this interaction and sends the browser on to oidc-provider. */
export async function grantLogin(ctx: Context, provider: Provider, grant: Grant): Promise<void> {
  await redirectTo(ctx, provider, { login: loginResult(grant) });
}

export async function grantConsent(ctx: Context, provider: Provider, grantId: string): Promise<void> {
  await redirectTo(ctx, provider, { consent: { grantId } }, true);
}

/** Ends the interaction with an OAuth error for the relying party (e.g. access_denied on cancel). */
export async function endWithError(ctx: Context, provider: Provider, error: string, description: string): Promise<void> {
  await redirectTo(ctx, provider, { error, error_description: description });
}
