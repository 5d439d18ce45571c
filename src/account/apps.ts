/**
 * Connected apps: the apps the user allowed (remembered consent) or that hold a grant for the account
 * (oidc-provider Grants), with what each may do. "Remove access" forgets the consent (the app asks again
 * at the next sign-in) and revokes every grant of that app and every token issued under them, so its
 * refresh tokens stop working at once. Latchkey's own apps are not listed.
 */
import { z } from 'zod';
import { isFirstParty } from '../first-party/app.ts';
import { revokeGrant } from '../oidc/end-session.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { doneRedirect, formatTime, renderPage } from './page.ts';

const KNOWN_SCOPES = new Set(['openid', 'profile', 'email', 'phone', 'address', 'offline_access']);

interface GrantPayload {
  clientId?: unknown;
  openid?: { scope?: unknown };
  resources?: Record<string, unknown>;
  iat?: unknown;
}

export interface ConnectedApp {
  clientId: string;
  name: string;
  scopes: string[];
  since: ReturnType<typeof formatTime>;
  grantIds: string[];
}

const removeForm = z.object({ client: z.string().min(1).max(200).regex(/^[\x21-\x7E]+$/) });

/** The user's grants, one entry per app. */
export async function connectedApps(deps: AccountDeps, userId: string): Promise<ConnectedApp[]> {
  const { t } = deps.render;
  const provider = deps.provider();
  const byClient = new Map<string, { scopes: Set<string>; resources: Set<string>; iat: number; grantIds: string[] }>();
  for (const { id, payload } of await deps.store.oidc.byAccount('Grant', userId)) {
    const grant = payload as GrantPayload;
    if (typeof grant.clientId !== 'string' || isFirstParty(grant.clientId)) continue;
    const entry = byClient.get(grant.clientId) ?? { scopes: new Set(), resources: new Set(), iat: Infinity, grantIds: [] };
    if (typeof grant.openid?.scope === 'string') grant.openid.scope.split(' ').filter(Boolean).forEach((s) => entry.scopes.add(s));
    for (const [resource, scope] of Object.entries(grant.resources ?? {})) {
      if (typeof scope === 'string') scope.split(' ').filter(Boolean).forEach((s) => entry.resources.add(t('consent.scope.resource', { scope: s, resource })));
    }
    if (typeof grant.iat === 'number') entry.iat = Math.min(entry.iat, grant.iat);
    entry.grantIds.push(id);
    byClient.set(grant.clientId, entry);
  }
  for (const consent of await deps.store.consents.listForUser(userId)) {
    const entry = byClient.get(consent.clientId) ?? { scopes: new Set(), resources: new Set(), iat: Infinity, grantIds: [] };
    consent.scopes.forEach((s) => entry.scopes.add(s));
    for (const [resource, scopes] of Object.entries(consent.resources)) scopes.forEach((s) => entry.resources.add(t('consent.scope.resource', { scope: s, resource })));
    entry.iat = Math.min(entry.iat, Math.floor(consent.grantedAt.getTime() / 1000));
    byClient.set(consent.clientId, entry);
  }
  const apps: ConnectedApp[] = [];
  for (const [clientId, entry] of byClient) {
    const client = await provider.Client.find(clientId).catch(() => undefined);
    apps.push({
      clientId,
      name: client?.clientName ?? t('account.apps.removedApp', { id: clientId }),
      scopes: [
        ...[...entry.scopes].map((s) => (KNOWN_SCOPES.has(s) ? t(`consent.scope.${s}`) : t('consent.scope.other', { scope: s }))),
        ...entry.resources,
      ],
      since: Number.isFinite(entry.iat) ? formatTime(new Date(entry.iat * 1000)) : undefined,
      grantIds: entry.grantIds,
    });
  }
  return apps.sort((a, b) => a.name.localeCompare(b.name));
}

async function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  const apps = await connectedApps(deps, ctx.state.user.id);
  renderPage(deps, ctx, 'account/apps.njk', 'apps', { apps, ...vars }, status);
}

export function showApps(deps: AccountDeps) {
  return async function appsPage(ctx: AccountContext) {
    await show(deps, ctx);
  };
}

export function removeApp(deps: AccountDeps) {
  return async function removeAccess(ctx: AccountContext) {
    const { user } = ctx.state;
    const parsed = removeForm.safeParse(ctx.state.form);
    const app = parsed.success ? (await connectedApps(deps, user.id)).find((a) => a.clientId === parsed.data.client) : undefined;
    if (!app) return show(deps, ctx, { error: deps.render.t('account.apps.gone') }, 400);
    const provider = deps.provider();
    await deps.store.consents.forget(user.id, app.clientId);
    for (const grantId of app.grantIds) await revokeGrant(provider, grantId);
    await deps.events.record({ type: 'app.access_removed', userId: user.id, ...requestMeta(ctx), details: { client: app.clientId, name: app.name } });
    doneRedirect(deps, ctx, '/account/apps', 'app');
  };
}
