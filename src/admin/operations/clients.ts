/**
 * Clients (relying parties), as administrators register, list, edit, disable and remove them, and rotate
 * their secrets. Every change is announced to running servers at once (store/clients.ts, CLIENT_CHANGES).
 */
import { newClientSecret, registerClient, revisedClient, type ClientChanges, type ClientInput, type RegisteredClient } from '../../oidc/clients.ts';
import type { Services } from '../../services.ts';
import type { StoredClient } from '../../store/clients.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize, authorizeClientTarget } from './permissions.ts';
import { providerFor } from './provider.ts';

export interface ClientView {
  clientId: string;
  name: string;
  /** oidc-provider metadata: redirect URIs, grant types, auth method, …; never the secret. */
  metadata: Record<string, unknown>;
  /** When the client was disabled; null while it is enabled. */
  disabledAt: Date | null;
  createdAt: Date;
}

/** What the log and the caller see of a client: never a secret, current or previous. */
const viewOf = (c: Omit<StoredClient, 'secret' | 'previousSecret' | 'updatedAt'>): ClientView => ({
  clientId: c.clientId, name: c.name, metadata: c.metadata, disabledAt: c.disabledAt, createdAt: c.createdAt,
});

/** The scopes a stored client was registered for (oidc-provider's `scope` metadata), if any. */
const scopeOf = (stored: StoredClient | undefined) => (typeof stored?.metadata.scope === 'string' ? stored.metadata.scope : undefined);

const notFound = (clientId: string) => new OperationError('client.not_found', `no client with id ${clientId}`, 404);

/** Registers a client; the secret (confidential clients) is in the result once and never again. */
export async function addClient(services: Services, actor: Actor, input: ClientInput): Promise<RegisteredClient> {
  const who = actorFields(actor);
  return audited(services, actor, {
    action: 'clients.add',
    target: { type: 'client' },
    // The secret is in the result for the caller; redaction keeps it out of the log (clientSecret is denied).
    outcome: (client) => ({
      targetId: client.clientId, after: client,
      event: { type: 'client.created', ...who, details: { clientId: client.clientId, ...who.details } },
    }),
  }, () => {
    authorize(actor, 'clients.write');
    authorizeClientTarget(actor, input.scopes);
    return register(services, input);
  });
}

async function register(services: Services, input: ClientInput): Promise<RegisteredClient> {
  return registerClient(services.store, await providerFor(services), input);
}

export async function listClients(services: Services, actor: Actor): Promise<ClientView[]> {
  return audited(services, actor, { action: 'clients.list', target: { type: 'client' }, outcome: (clients) => ({ after: { count: clients.length } }) },
    async () => {
      authorize(actor, 'clients.read');
      return (await services.store.clients.list()).map(viewOf);
    });
}

/** One client (never its secret), disabled or not; 404 when there is none. */
export async function showClient(services: Services, actor: Actor, clientId: string): Promise<ClientView> {
  return audited(services, actor, { action: 'clients.show', target: { type: 'client', id: clientId } }, async () => {
    authorize(actor, 'clients.read');
    const stored = await services.store.clients.find(clientId);
    if (!stored) throw notFound(clientId);
    return viewOf(stored);
  });
}

export async function removeClient(services: Services, actor: Actor, clientId: string): Promise<void> {
  const stored = await services.store.clients.find(clientId);
  const who = actorFields(actor);
  await audited(services, actor, {
    action: 'clients.remove',
    target: { type: 'client', id: clientId },
    before: stored && viewOf(stored),
    outcome: () => ({ event: { type: 'client.removed', ...who, details: { clientId, ...who.details } } }),
  }, async () => {
    authorize(actor, 'clients.write');
    authorizeClientTarget(actor, scopeOf(stored));
    if (!(await services.store.clients.remove(clientId))) throw notFound(clientId);
  });
}

/**
 * Edits a client: its redirect and post-logout URIs, grant types, auth method (within confidential or
 * public), ID token algorithm, minimum level, consent (first party), logo, back-channel logout, name.
 * The result is validated exactly as a registration (oidc/clients.ts) and every running server uses it at
 * once. Refused (409) when the client changed meanwhile, so that no edit is lost.
 */
export async function updateClient(services: Services, actor: Actor, clientId: string, changes: ClientChanges): Promise<ClientView> {
  const stored = await services.store.clients.find(clientId);
  const who = actorFields(actor);
  return audited(services, actor, {
    action: 'clients.update',
    target: { type: 'client', id: clientId },
    before: stored && viewOf(stored),
    outcome: (client) => ({
      after: client,
      event: { type: 'client.updated', ...who, details: { clientId, changed: Object.keys(changes).filter((k) => changes[k as keyof ClientChanges] !== undefined), ...who.details } },
    }),
  }, async () => {
    authorize(actor, 'clients.write');
    authorizeClientTarget(actor, scopeOf(stored), changes.scopes);
    if (!stored) throw notFound(clientId);
    if (Object.values(changes).every((v) => v === undefined)) throw new OperationError('client.no_change', 'nothing to change: name at least one setting');
    const next = await revisedClient(services.store, await providerFor(services), stored, changes);
    const updated = await services.store.clients.update(clientId, stored, next);
    if (!updated) throw new OperationError('client.changed', `client ${clientId} changed meanwhile: look at it again and repeat the edit`, 409);
    return viewOf(updated);
  });
}

export const DEFAULT_GRACE_SECONDS = 24 * 3600;
export const MAX_GRACE_SECONDS = 30 * 24 * 3600;

export interface RotatedSecret {
  clientId: string;
  /** The new secret: here once, never stored in the clear, never in the audit log. */
  clientSecret: string;
  /** Until when the secret before it still works; null when it stopped at once (a grace of 0). */
  previousValidUntil: Date | null;
}

/**
 * Gives a confidential client a new secret, returned once. The one before it keeps working for
 * `graceSeconds` (24 hours by default, 30 days at most, 0 for not at all), then stops, on every instance
 * at that moment (oidc/client-secret.ts). A client_secret_jwt client signs its assertions with the secret
 * itself, and oidc-provider checks them against one key: its secret can only be rotated with no grace.
 * A sensitive action: the console asks for a fresh step-up before it.
 */
export async function rotateClientSecret(services: Services, actor: Actor, clientId: string, options: { graceSeconds?: number } = {}): Promise<RotatedSecret> {
  const graceSeconds = options.graceSeconds ?? DEFAULT_GRACE_SECONDS;
  const stored = await services.store.clients.find(clientId);
  const who = actorFields(actor);
  return audited(services, actor, {
    action: 'clients.rotate_secret',
    target: { type: 'client', id: clientId },
    before: stored && { previousSecretValidUntil: stored.previousSecret?.expiresAt ?? null },
    // The new secret is the caller's alone: the row records the grace and nothing of either secret.
    outcome: (r) => ({
      after: { graceSeconds, previousSecretValidUntil: r.previousValidUntil },
      event: { type: 'client.secret_rotated', ...who, details: { clientId, graceSeconds, ...who.details } },
    }),
  }, async () => {
    authorize(actor, 'clients.write');
    if (!Number.isSafeInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw new OperationError('client.grace_invalid', `the grace period is 0 to ${MAX_GRACE_SECONDS} seconds (30 days), in whole seconds`, 400, 'grace');
    }
    if (!stored) throw notFound(clientId);
    authorizeClientTarget(actor, scopeOf(stored));
    if (!stored.secret) throw new OperationError('client.public', `client ${clientId} is public: it has no secret to rotate`, 409);
    if (stored.metadata.token_endpoint_auth_method === 'client_secret_jwt' && graceSeconds > 0) {
      throw new OperationError('client.grace_jwt', `client ${clientId} uses client_secret_jwt: its assertions are signed with the secret itself and checked against one key, so the old secret cannot keep working; rotate with a grace of 0 (the app must switch at once)`, 409, 'grace');
    }
    const secret = newClientSecret();
    const rotated = await services.store.clients.rotateSecret(clientId, secret, graceSeconds);
    if (!rotated) throw notFound(clientId);
    return { clientId, clientSecret: secret, previousValidUntil: rotated.previousSecret?.expiresAt ?? null };
  });
}

/**
 * Disables a client: oidc-provider no longer finds it, so every request of it or for it gets
 * invalid_client (sign-in, token, introspection, revocation), its tokens are inactive at introspection and
 * refused at userinfo, and its refresh tokens cannot be used (the client cannot authenticate). Nothing is
 * deleted: enabling it again brings back whatever has not expired meanwhile; removing it is for good.
 */
export function disableClient(services: Services, actor: Actor, clientId: string): Promise<ClientView> {
  return setDisabled(services, actor, clientId, true);
}

export function enableClient(services: Services, actor: Actor, clientId: string): Promise<ClientView> {
  return setDisabled(services, actor, clientId, false);
}

async function setDisabled(services: Services, actor: Actor, clientId: string, disabled: boolean): Promise<ClientView> {
  const stored = await services.store.clients.find(clientId);
  const who = actorFields(actor);
  return audited(services, actor, {
    action: disabled ? 'clients.disable' : 'clients.enable',
    target: { type: 'client', id: clientId },
    before: stored && { disabledAt: stored.disabledAt },
    outcome: (client) => ({
      after: { disabledAt: client.disabledAt },
      event: { type: disabled ? 'client.disabled' : 'client.enabled', ...who, details: { clientId, ...who.details } },
    }),
  }, async () => {
    authorize(actor, 'clients.write');
    authorizeClientTarget(actor, scopeOf(stored));
    if (!stored) throw notFound(clientId);
    const changed = await services.store.clients.setDisabled(clientId, disabled);
    if (!changed) throw new OperationError(disabled ? 'client.already_disabled' : 'client.not_disabled', `client ${clientId} is ${disabled ? 'already disabled' : 'not disabled'}`, 409);
    return viewOf(changed);
  });
}
