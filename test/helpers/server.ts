/** A real Latchkey server on a loopback port, on a fresh database, with its log captured for inspection. */
import { Writable } from 'node:stream';
import net from 'node:net';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createRenderer } from '../../src/http/render.ts';
import { registerClient, type ClientInput, type RegisteredClient } from '../../src/oidc/clients.ts';
import { createProvider } from '../../src/oidc/provider.ts';
import { loadJwks } from '../../src/oidc/keys.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { User } from '../../src/store/users.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestServer {
  url: string;
  config: Config;
  server: RunningServer;
  db: TestDatabase;
  /** Every log line written so far, as text (for "no secret reaches the log" checks). */
  logText(): string;
  addUser(u: { email: string; password: string; name?: string; admin?: boolean }): Promise<User>;
  /** A new user with a numbered address (`<prefix><n>@example.com`) and a password of its own. */
  newUser(prefix: string): Promise<{ id: string; email: string; password: string }>;
  addClient(c: ClientInput): Promise<RegisteredClient>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface TestServerOptions {
  /** Deep-merged into the configuration. */
  config?: Record<string, unknown>;
  logLevel?: string;
  /** Reuse a database (a second instance on the same PostgreSQL database). */
  db?: TestDatabase;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const port = await freePort();
  const config = loadConfig({
    env: {},
    overrides: {
      env: 'test',
      host: '127.0.0.1',
      port,
      issuer: `http://localhost:${port}`,
      log: { level: opts.logLevel ?? 'info' },
      // Sign-in alerts for new devices are mail that most suites do not expect; their own suite turns them on.
      risk: { newDeviceAlert: false },
      ...opts.config,
    },
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log = createLogger(config.log.level, sink);
  const db = opts.db ?? (await createTestDatabase());
  const server = await startServer(config, { database: db.database, log, adminSocket: false });
  const { services } = server;
  let numbered = 0;
  const testServer: TestServer = {
    url: config.issuer,
    config,
    server,
    db,
    logText: () => lines.join(''),
    async newUser(prefix) {
      const n = ++numbered;
      const credentials = { email: `${prefix}${n}@example.com`, password: `${prefix} user ${n} password` };
      return { ...credentials, id: (await testServer.addUser(credentials)).id };
    },
    async addUser(u) {
      return services.store.users.create({
        email: u.email, name: u.name ?? null, passwordHash: await services.hasher.hash(u.password),
        roles: u.admin ? ['admin'] : [], emailVerified: true,
      });
    },
    async addClient(c) {
      const provider = createProvider({
        config, store: services.store, log, render: createRenderer(config), jwks: await loadJwks(services.store),
      });
      return registerClient(services.store, provider, c);
    },
    async stop() {
      await server.stop();
      if (!opts.db) await db.drop();
    },
  };
  return testServer;
}
