/**
 * The load-balanced set-up of deploy/cluster.ts (nginx with TLS in front of real `node dist/src/main.js`
 * instances on one PostgreSQL database) for the fault tests, plus what a test needs around it: this process
 * trusts nginx's self-signed certificate (fetch, openid-client), and fixtures are written straight into the
 * cluster's database with Latchkey's own code.
 */
import tls from 'node:tls';
import { loadConfig, type Config } from '../../src/config.ts';
import { createRenderer } from '../../src/http/render.ts';
import { createLogger } from '../../src/log.ts';
import { registerClient, type ClientInput, type RegisteredClient } from '../../src/oidc/clients.ts';
import { loadJwks } from '../../src/oidc/keys.ts';
import { createProvider } from '../../src/oidc/provider.ts';
import { createServices, type Services } from '../../src/services.ts';
import type { User } from '../../src/store/users.ts';
import { startCluster, type Cluster, type ClusterOptions } from '../../deploy/cluster.ts';
import { TEST_DATABASE_URL } from './db.ts';

export type { Cluster, ClusterInstance, Exit } from '../../deploy/cluster.ts';

export interface TestCluster extends Cluster {
  /** The instances' configuration, as they load it. */
  config: Config;
  /** Latchkey's services on the cluster's database, in this process: fixtures and direct checks. */
  services: Services;
  addUser(u: { email: string; password: string; name?: string }): Promise<User>;
  addClient(c: ClientInput): Promise<RegisteredClient>;
  /** Which instance (index) served the request whose access-log line matches `pattern`, e.g. /"POST \/interaction\/abc\/login"/. */
  servedBy(pattern: RegExp): number[];
}

/**
 * Makes this process's fetch (and node:https) trust `pem` besides the usual authorities. Set before the
 * first TLS connection to the issuer: undici reads the default CA list per connection.
 */
export function trustCertificate(pem: string): void {
  const current = tls.getCACertificates('default');
  if (!current.includes(pem)) tls.setDefaultCACertificates([...current, pem]);
}

/** The PostgreSQL server the fault tests use: LATCHKEY_TEST_DATABASE_URL, else the local default. */
export const CLUSTER_DATABASE_URL = TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function startTestCluster(opts: ClusterOptions = {}): Promise<TestCluster> {
  const cluster = await startCluster({ serverUrl: CLUSTER_DATABASE_URL, ...opts, env: { LATCHKEY_LOG_LEVEL: 'warn', ...opts.env } });
  trustCertificate(cluster.certificate);
  const config = loadConfig({ env: cluster.env });
  const log = createLogger('warn');
  const services = createServices(config, { log });
  const stopCluster = cluster.stop;
  return Object.assign(cluster, {
    config,
    services,
    async addUser(u: { email: string; password: string; name?: string }) {
      return services.store.users.create({ email: u.email, name: u.name ?? null, passwordHash: await services.hasher.hash(u.password), emailVerified: true });
    },
    async addClient(c: ClientInput) {
      const provider = createProvider({ config, store: services.store, log, render: createRenderer(config), jwks: await loadJwks(services.store) });
      return registerClient(services.store, provider, c);
    },
    servedBy(pattern: RegExp) {
      const line = cluster.accessLog().split('\n').find((l) => pattern.test(l));
      if (!line) throw new Error(`no access-log line matches ${pattern}`);
      // upstream=127.0.0.1:A, 127.0.0.1:B: every instance tried, the last one answered.
      const tried = /upstream=([^ ]+(?:, [^ ]+)*) upstream_status/.exec(line)![1]!.split(', ');
      return tried.map((addr) => cluster.instances.findIndex((i) => addr.endsWith(`:${i.port}`)));
    },
    async stop() {
      await services.database.close().catch(() => {});
      await stopCluster();
    },
  });
}
