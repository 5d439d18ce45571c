/** The consent step: shows what the app asks for, records the grant and remembers the consent (existing-grant.ts reads it). */
import type { InteractionContext, InteractionDeps } from './context.ts';
import { grantConsent } from './grant.ts';
import { allowedBy } from '../oidc/existing-grant.ts';
import { isFirstParty } from '../first-party/app.ts';

const KNOWN_SCOPES = new Set(['openid', 'profile', 'email', 'phone', 'address', 'offline_access']);

interface ConsentDetails {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
}

export async function renderConsent(deps: InteractionDeps, ctx: InteractionContext) {
  const { details } = ctx.state;
  const d = details.prompt.details as ConsentDetails;
  const user = details.session?.accountId ? await deps.store.users.findById(details.session.accountId) : undefined;
  const { t } = deps.render;
  const scopes = [
    ...(d.missingOIDCScope ?? []).map((s) => (KNOWN_SCOPES.has(s) ? t(`consent.scope.${s}`) : t('consent.scope.other', { scope: s }))),
    ...Object.entries(d.missingResourceScopes ?? {}).flatMap(([resource, scopes]) => scopes.map((s) => t('consent.scope.resource', { scope: s, resource }))),
  ];
  ctx.type = 'html';
  ctx.body = deps.render('interaction/consent.njk', {
    uid: details.uid, csrf: deps.csrf.token(ctx), clientName: ctx.state.clientName, email: user?.email, scopes,
  });
}

export function confirm(deps: InteractionDeps) {
  return async function confirmConsent(ctx: InteractionContext) {
    const provider = deps.provider();
    const { details } = ctx.state;
    const accountId = details.session?.accountId;
    const clientId = String(details.params.client_id);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId, clientId });
    if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
      throw new Error('consent grant does not belong to this interaction');
    }
    const d = details.prompt.details as ConsentDetails;
    if (d.missingOIDCScope?.length) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims?.length) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
    const grantId = await grant.save();
    // Remembered: the next sign-in to this app asks only for what is new (Latchkey's own apps need none).
    if (accountId && !isFirstParty(clientId)) await deps.store.consents.remember(accountId, clientId, allowedBy(grant));
    await grantConsent(ctx, provider, grantId);
  };
}
