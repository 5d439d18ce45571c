/**
 * oidc-provider's `loadExistingGrant`: which grant an authorization request starts from, and so whether
 * the consent page is shown (it is, for whatever the grant lacks, or when the app asks with prompt=consent).
 *  - The grant of this session, when it has one for the app.
 *  - Plus what the user allowed the app before (remembered consent, store/consents.ts), so a new session
 *    or a sign-out does not ask again; only something new is asked.
 *  - A first-party app (Latchkey's own, or one registered with --first-party) never sees a consent page:
 *    what it asks for is implied.
 * `offline_access` is never implied nor carried over: as OpenID Connect says, it needs consent each time it
 * is asked for (with prompt=consent; oidc-provider drops it from any other request).
 */
import type { Grant, KoaContextWithOIDC } from 'oidc-provider';
import { FIRST_PARTY_APPS } from '../first-party/app.ts';
import type { Allowed } from '../store/consents.ts';
import type { Store } from '../store/index.ts';
import { takeConsentRead } from './adapter.ts';

const NEEDS_CONSENT_EACH_TIME = 'offline_access';

/** A client registered as first-party (`first_party` metadata): its consent is implied. */
export const skipsConsent = (metadata: Record<string, unknown>) => metadata.first_party === true;

/** What a first-party app's request implies: everything it asks for. */
function askedFor(ctx: KoaContextWithOIDC): Allowed {
  const { oidc } = ctx;
  const requested = [...oidc.requestParamScopes];
  const resources: Record<string, string[]> = {};
  for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
    resources[indicator] = requested.filter((s) => server.scopes.has(s));
  }
  return { scopes: [...oidc.requestParamOIDCScopes], claims: [...oidc.requestParamClaims], resources };
}

function add(grant: Grant, allowed: Allowed): void {
  const scopes = allowed.scopes.filter((s) => s !== NEEDS_CONSENT_EACH_TIME);
  if (scopes.length) grant.addOIDCScope(scopes.join(' '));
  if (allowed.claims.length) grant.addOIDCClaims([...allowed.claims]);
  for (const [resource, list] of Object.entries(allowed.resources)) if (list.length) grant.addResourceScope(resource, list.join(' '));
}

/** What the consent page's grant holds, to remember it. */
export function allowedBy(grant: Grant): Allowed {
  const resources: Record<string, string[]> = {};
  for (const [resource, scope] of Object.entries(grant.resources ?? {})) {
    if (typeof scope === 'string') resources[resource] = scope.split(' ').filter(Boolean);
  }
  return { scopes: (grant.getOIDCScope() || '').split(' ').filter(Boolean), claims: grant.getOIDCClaims(), resources };
}

/** The user's remembered consent for the app: as this request's interaction lookup read it (adapter.ts), or read now. */
async function rememberedConsent(store: Store, accountId: string, clientId: string): Promise<Allowed | undefined> {
  const read = takeConsentRead(accountId, clientId);
  return read ? read.consent : store.consents.find(accountId, clientId);
}

export function existingGrantLoader(store: Store) {
  return async function loadExistingGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
    const { oidc } = ctx;
    const client = oidc.client!;
    const accountId = oidc.session!.accountId!;
    const grantId = oidc.result?.consent?.grantId || oidc.session!.grantIdFor(client.clientId);
    const found = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    const existing = found && found.accountId === accountId && found.clientId === client.clientId ? found : undefined;
    // Just consented: that grant is the answer.
    if (existing && oidc.result?.consent?.grantId) return existing;

    const app = FIRST_PARTY_APPS.find((a) => a.clientId === client.clientId);
    const allowed: Allowed | undefined = app
      ? { scopes: app.scope.split(' '), claims: [], resources: {} }
      : skipsConsent(client.metadata()) ? askedFor(ctx) : await rememberedConsent(store, accountId, client.clientId);
    if (!allowed) return existing;
    const grant = existing ?? new oidc.provider.Grant({ clientId: client.clientId, accountId });
    add(grant, allowed);
    await grant.save();
    return grant;
  };
}
