/**
 * Prepares the database before the server starts, through Latchkey's own code: migrations, signing keys,
 * one user per virtual user (each with its own argon2id hash), a web client (authorization code + refresh)
 * and a service client (client credentials). The database is closed again before the server opens it.
 */
import { createPasswordHasher } from '../src/factors/password.ts';
import { createRenderer } from '../src/http/render.ts';
import { createLogger } from '../src/log.ts';
import { registerClient, type RegisteredClient } from '../src/oidc/clients.ts';
import { ensureSigningKeys, loadJwks } from '../src/oidc/keys.ts';
import { createProvider } from '../src/oidc/provider.ts';
import { createServices } from '../src/services.ts';
import type { Config } from '../src/config.ts';

export interface BenchUser {
  email: string;
  password: string;
}

export interface Fixtures {
  users: BenchUser[];
  /** Confidential, client_secret_basic, authorization_code + refresh_token. */
  web: RegisteredClient & { redirectUri: string };
  /** Confidential, client_secret_basic, client_credentials only. */
  service: RegisteredClient;
  /** The stored hash of a user, to check its parameters against the configuration. */
  sampleHash: string;
}

/** Never contacted: the load generator stops at the redirect and reads the code from the URL. */
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

export async function seed(config: Config, userCount: number): Promise<Fixtures> {
  const log = createLogger('warn');
  const services = createServices(config, { log });
  try {
    await services.database.migrate();
    await ensureSigningKeys(services.store, config);
    const hasher = createPasswordHasher(config.argon2);
    const users = Array.from({ length: userCount }, (_, i) => ({ email: `bench-${i}@example.com`, password: `bench password number ${i}` }));
    const hashes = await Promise.all(users.map((u) => hasher.hash(u.password)));
    for (const [i, u] of users.entries()) {
      await services.store.users.create({ email: u.email, name: `Bench User ${i}`, passwordHash: hashes[i]!, emailVerified: true });
    }
    const provider = createProvider({ config, store: services.store, log, render: createRenderer(config), jwks: await loadJwks(services.store) });
    const web = await registerClient(services.store, provider, { name: 'Bench Web', redirectUris: [REDIRECT_URI] });
    const service = await registerClient(services.store, provider, { name: 'Bench Service', grantTypes: ['client_credentials'] });
    return { users, web: { ...web, redirectUri: REDIRECT_URI }, service, sampleHash: hashes[0]! };
  } finally {
    await services.database.close();
  }
}
