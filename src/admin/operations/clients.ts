/** Clients (relying parties), as administrators register, list and remove them. */
import { registerClient, type ClientInput, type RegisteredClient } from '../../oidc/clients.ts';
import type { Services } from '../../services.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { providerFor } from './provider.ts';

export interface ClientView {
  clientId: string;
  name: string;
  /** oidc-provider metadata: redirect URIs, grant types, auth method, …; never the secret. */
  metadata: Record<string, unknown>;
  createdAt: Date;
}

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
      return (await services.store.clients.list()).map((c) => ({ clientId: c.clientId, name: c.name, metadata: c.metadata, createdAt: c.createdAt }));
    });
}

export async function removeClient(services: Services, actor: Actor, clientId: string): Promise<void> {
  const stored = await services.store.clients.find(clientId);
  const who = actorFields(actor);
  await audited(services, actor, {
    action: 'clients.remove',
    target: { type: 'client', id: clientId },
    before: stored && { clientId: stored.clientId, name: stored.name, metadata: stored.metadata, createdAt: stored.createdAt },
    outcome: () => ({ event: { type: 'client.removed', ...who, details: { clientId, ...who.details } } }),
  }, async () => {
    authorize(actor, 'clients.write');
    if (!(await services.store.clients.remove(clientId))) throw new OperationError('client.not_found', `no client with id ${clientId}`, 404);
  });
}
