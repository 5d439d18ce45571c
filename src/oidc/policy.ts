/**
 * The interaction policy: oidc-provider's base prompts, with its exact-match essential-acr checks replaced
 * by one level check. oidc-provider alone re-prompts only for *essential* acr claims; this check makes
 * acr_values, the essential acr claim and the client's minimum level all force a new sign-in when the
 * session's level is lower. Unknown state fails closed (prompts).
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { requiredLevel, satisfies } from '../security/level.ts';

const { base, Check } = interactionPolicy;

/** The level the current authorization request needs. */
export function requestedLevel(ctx: KoaContextWithOIDC) {
  const { oidc } = ctx;
  const claims = oidc.claims as { id_token?: { acr?: { essential?: boolean; value?: unknown; values?: unknown } } } | undefined;
  return requiredLevel({
    acrValues: oidc.params?.acr_values as string | undefined,
    acrClaim: claims?.id_token?.acr,
    clientMinimum: oidc.client?.metadata().minimum_acr as string | undefined,
  });
}

export function buildPolicy() {
  const policy = base();
  const login = policy.get('login')!;
  for (const reason of ['essential_acrs', 'essential_acr']) {
    const i = login.checks.findIndex((c) => c.reason === reason);
    if (i !== -1) login.checks.splice(i, 1);
  }
  login.checks.push(
    new Check(
      'acr_level',
      'the requested authentication level could not be obtained',
      'login_required',
      (ctx) => {
        const need = requestedLevel(ctx);
        if (!ctx.oidc.session?.accountId) return Check.REQUEST_PROMPT;
        return satisfies(ctx.oidc.acr, need) ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
      },
      (ctx) => ({ acr_required: requestedLevel(ctx) }),
    ),
  );
  return policy;
}
