/**
 * An oidc-provider instance over the services' store, for operations that need the provider's models
 * outside a running server (the CLI): registering a client, ending a session, back-channel logout.
 */
import type { Provider } from 'oidc-provider';
import { createRenderer } from '../../http/render.ts';
import { logOutEndedSessions } from '../../oidc/end-session.ts';
import { ensureSigningKeys, loadJwks } from '../../oidc/keys.ts';
import { createProvider } from '../../oidc/provider.ts';
import type { Services } from '../../services.ts';
import type { Payload } from '../../store/oidc-payloads.ts';

export async function providerFor(services: Services): Promise<Provider> {
  // The provider validates the ID token algorithm against its keys: on a database no server has started
  // on yet there are none, and every client would be refused.
  await ensureSigningKeys(services.store, services.config);
  return createProvider({
    config: services.config, store: services.store, log: services.log,
    render: createRenderer(services.config), jwks: await loadJwks(services.store),
  });
}

/** Back-channel logout for every app that took part in sessions ended in the store (as a reset does). */
export async function logOutApps(services: Services, accountId: string, sessions: readonly Payload[]): Promise<void> {
  if (!sessions.some((s) => Object.keys((s.authorizations ?? {}) as object).length > 0)) return;
  await logOutEndedSessions(await providerFor(services), accountId, sessions, services.log);
}
