/** Clients (relying parties), as administrators register, list and remove them. */
import { createRenderer } from '../../http/render.ts';
import { registerClient, type ClientInput, type RegisteredClient } from '../../oidc/clients.ts';
import { ensureSigningKeys, loadJwks } from '../../oidc/keys.ts';
import { createProvider } from '../../oidc/provider.ts';
import type { Services } from '../../services.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';

export interface ClientView {
  clientId: string;
  name: string;
  /** oidc-provider metadata: redirect URIs, grant types, auth method, …; never the secret. */
  metadata: Record<string, unknown>;
  createdAt: Date;
}

/** Registers a client; the secret (confidential clients) is in the result once and never again. */
export async function addClient(services: Services, actor: Actor, input: ClientInput): Promise<RegisteredClient> {
  // The provider validates the ID token algorithm against its keys: on a database no server has started
  // on yet there are none, and every client would be refused.
  await ensureSigningKeys(services.store, services.config);
  const provider = createProvider({
    config: services.config, store: services.store, log: services.log,
    render: createRenderer(services.config), jwks: await loadJwks(services.store),
  });
  const client = await registerClient(services.store, provider, input);
  const who = actorFields(actor);
  await services.events.record({ type: 'client.created', ...who, details: { clientId: client.clientId, ...who.details } });
  return client;
}

export async function listClients(services: Services): Promise<ClientView[]> {
  return (await services.store.clients.list()).map((c) => ({ clientId: c.clientId, name: c.name, metadata: c.metadata, createdAt: c.createdAt }));
}

export async function removeClient(services: Services, actor: Actor, clientId: string): Promise<void> {
  if (!(await services.store.clients.remove(clientId))) throw new OperationError('client.not_found', `no client with id ${clientId}`, 404);
  const who = actorFields(actor);
  await services.events.record({ type: 'client.removed', ...who, details: { clientId, ...who.details } });
}
