/**
 * The ONE place a sign-in is granted. `loginResult` derives the level from the proofs (level.ts), never a
 * level assigned by a caller, and refuses outright a grant whose proofs do not meet its requirement, so
 * no path can hand out less than the sign-in needed. `grantLogin` gives that result to oidc-provider at the
 * end of an interaction; `grantBackchannel` gives the same `loginResult` to a back-channel (CIBA) request
 * approved on the user's phone (oidc/ciba.ts). Consent and refusal end interactions here too, so every end
 * of one is in this file.
 */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Amr, Proof } from '../factors/types.ts';
import { levelOf, meets, type Acr, type Requirement } from '../security/level.ts';
import { saveIfStillThere } from '../oidc/adapter.ts';

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
  // The interaction this request loaded (load.ts: the browser's, checked against its session) is given its
  // result as oidc-provider's interactionResult would, without looking it up again.
  const loaded: unknown = (ctx.state as { details?: unknown }).details;
  const url = loaded instanceof provider.Interaction
    ? await saveResult(loaded, result, keepLogin)
    : await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: keepLogin });
  ctx.status = 303;
  ctx.redirect(url);
}

/** oidc-provider's `interactionResult` on an interaction already loaded: its result saved, where it returns to. */
async function saveResult(interaction: InstanceType<Provider['Interaction']>, result: Parameters<Provider['interactionResult']>[2], merge: boolean): Promise<string> {
  interaction.result = merge && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
  await saveIfStillThere(() => interaction.save(interaction.exp - Math.floor(Date.now() / 1000)));
  return interaction.returnTo;
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

/** A back-channel (CIBA) authentication request, as oidc-provider keeps it. */
export type BackchannelRequest = InstanceType<Provider['BackchannelAuthenticationRequest']>;

/** What a back-channel approval allows the app: the OIDC scopes and claims, and each resource's scopes. */
export interface BackchannelAccess {
  scope: string;
  claims: readonly string[];
  resources: Readonly<Record<string, string>>;
}

/**
 * Grants a back-channel request its user approved: the level derived by `loginResult` (refused below the
 * requirement, before anything is saved), the approval's access as an oidc-provider Grant, and the result
 * handed to the request (which pings the app in ping mode). The caller makes sure it runs once per request:
 * oidc-provider's `backchannelResult` would overwrite an earlier result.
 */
export async function grantBackchannel(provider: Provider, request: BackchannelRequest, grant: Grant, access: BackchannelAccess): Promise<LoginResult> {
  const login = loginResult(grant);
  if (request.accountId !== login.accountId) throw new Error('refused to grant a back-channel request to another account');
  const allowed = new provider.Grant({ accountId: login.accountId, clientId: request.clientId! });
  if (access.scope) allowed.addOIDCScope(access.scope);
  if (access.claims.length) allowed.addOIDCClaims([...access.claims]);
  for (const [resource, scope] of Object.entries(access.resources)) if (scope) allowed.addResourceScope(resource, scope);
  await allowed.save();
  await provider.backchannelResult(request, allowed, { acr: login.acr, amr: login.amr, authTime: login.ts });
  return login;
}

/** Ends a back-channel request with access_denied (the user said no on their phone). */
export async function refuseBackchannel(provider: Provider, request: BackchannelRequest, description: string): Promise<void> {
  await provider.backchannelResult(request, new errors.AccessDenied(description));
}
