import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrations } from '../../migrations/index.ts';
import { projectRoot } from '../../src/paths.ts';
import type { RegisteredClient } from '../../src/oidc/clients.ts';
import { openDatabase } from '../../src/store/db.ts';
import { CookieClient } from '../helpers/browser.ts';
import { createTestDatabaseUrl, TEST_DATABASE_URL } from '../helpers/db.ts';
import { decodeJwt, fetchJwks } from '../helpers/jwt.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

type Env = Record<string, string>;
type Cli = (args: string[], stdin?: string) => Promise<Run>;

/** The environment of a child process: ours without any LATCHKEY_* or test-runner variable, plus `extra`. */
function childEnv(extra: Env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LATCHKEY_') && !k.startsWith('NODE_TEST')) env[k] = v;
  }
  return { ...env, LATCHKEY_LOG_LEVEL: 'warn', ...extra };
}

/** Runs `node --import tsx <script> …args` (the same Node 24 that runs this test) and collects its output. */
function node(script: string, args: string[], env: Env, timeout?: number): ChildProcess & { output: { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: projectRoot, env: childEnv(env), stdio: 'pipe', ...(timeout ? { timeout } : {}) });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return Object.assign(child, { output, exited });
}

function cliFor(env: () => Env): Cli {
  return async (args, stdin = '') => {
    const child = node('src/admin/cli.ts', args, env(), 60_000);
    child.stdin!.end(stdin);
    const code = await child.exited;
    return { code, ...child.output };
  };
}

const ok = (r: Run) => {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
};
const json = <T,>(r: Run): T => JSON.parse(ok(r).stdout) as T;

/** A failure: non-zero exit, nothing on stdout, and stderr matching every pattern. */
function refused(r: Run, ...patterns: RegExp[]) {
  assert.notEqual(r.code, 0, `expected a failure, got exit 0: ${r.stdout}`);
  assert.equal(r.stdout, '');
  for (const p of patterns) assert.match(r.stderr, p);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a clear message, not a stack trace');
}

function toRegistered(out: Record<string, unknown>): RegisteredClient {
  const { client_id, client_secret, ...metadata } = out;
  return { clientId: String(client_id), clientSecret: typeof client_secret === 'string' ? client_secret : undefined, metadata };
}

interface KeyView { kid: string; alg: string; state: string; createdAt: string; activatesAt: string | null; publishedUntil: string }
interface UserView { id: string; email: string; name: string | null; roles: string[]; status: string }

/** What the command scenarios leave behind for the tests that follow them. */
interface Made {
  erin: { id: string; email: string; password: string };
  client: RegisteredClient;
  /** A public client the scenarios remove again. */
  publicId: string;
  /** The kids `keys rotate` made active. */
  rotated: string[];
}

/** What `migrate` prints on a fresh database: every migration, in order. */
const APPLIED_ALL = `applied ${migrations.length} migration(s): ${migrations.map((m) => m.name).join(', ')}\n`;
const ERIN_PASSWORD = 'erin-administers-latchkey';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The CLI's commands, end to end, against the database of this run (each CLI process costs about a second,
 * so independent invocations run side by side).
 */
function commandScenarios(cli: Cli, opts: { freshDatabase: boolean }, made: Partial<Made>) {
  it('migrate: applies the migrations once, then reports the database up to date', async () => {
    if (opts.freshDatabase) assert.equal(ok(await cli(['migrate'])).stdout, APPLIED_ALL);
    assert.equal(ok(await cli(['migrate'])).stdout, 'database is up to date\n');
  });

  it('users add: reads the password from stdin, grants --admin and prints JSON', async () => {
    const [admin, plain] = await Promise.all([
      cli(['users', 'add', '--email', 'Erin@Example.com', '--name', 'Erin', '--admin', '--password-stdin', '--json'], `${ERIN_PASSWORD}\n`),
      cli(['users', 'add', '--email', 'frank@example.com', '--password-stdin'], 'frank-is-no-admin'),
    ]);
    const out = json<{ id: string; email: string; roles: string[] }>(admin);
    assert.match(out.id, UUID);
    assert.equal(out.email, 'Erin@Example.com');
    assert.deepEqual(out.roles, ['admin']);
    assert.doesNotMatch(admin.stdout + admin.stderr, new RegExp(ERIN_PASSWORD));
    made.erin = { id: out.id, email: out.email, password: ERIN_PASSWORD };
    assert.match(ok(plain).stdout, /^created user frank@example\.com \([0-9a-f-]{36}\)\n$/);
  });

  it('users add: refuses a duplicate email (any case), a bad email, a short password, and a password not on stdin', async () => {
    const [duplicate, badEmail, short, missing] = await Promise.all([
      cli(['users', 'add', '--email', 'erin@EXAMPLE.com', '--password-stdin'], 'another-long-password'),
      cli(['users', 'add', '--email', 'gina.example.com', '--password-stdin'], 'another-long-password'),
      cli(['users', 'add', '--email', 'gina@example.com', '--password-stdin'], 'short\n'),
      cli(['users', 'add', '--email', 'hank@example.com'], 'hank-types-a-password'),
    ]);
    refused(duplicate, /a user with email erin@EXAMPLE\.com already exists/);
    refused(badEmail, /--email: "gina\.example\.com" is not a valid email address/);
    refused(short, /password: Use at least 8 characters/);
    refused(missing, /--password-stdin is required/);
  });

  it('users list: shows every user with roles and status, never a password hash, and none of the refused ones', async () => {
    const list = ok(await cli(['users', 'list', '--json']));
    const users = json<UserView[]>(list);
    const erin = users.find((u) => u.id === made.erin!.id);
    assert.deepEqual({ email: erin?.email, name: erin?.name, roles: erin?.roles, status: erin?.status }, { email: 'Erin@Example.com', name: 'Erin', roles: ['admin'], status: 'active' });
    assert.deepEqual(users.find((u) => u.email === 'frank@example.com')?.roles, []);
    const emails = users.map((u) => u.email.toLowerCase());
    assert.equal(emails.filter((e) => e === 'erin@example.com').length, 1, 'the duplicate was not created');
    for (const e of ['gina@example.com', 'hank@example.com']) assert.ok(!emails.includes(e), `${e} was not created`);
    assert.doesNotMatch(list.stdout, /argon2|password/i);
  });

  it('clients add: prints the client_id and, once, the client_secret; --public gets no secret; --no-pkce lets an old app skip PKCE', async () => {
    const [confidential, plain, pub, legacy] = await Promise.all([
      cli(['clients', 'add', '--name', 'Books', '--redirect-uri', 'http://localhost:9999/cb', '--redirect-uri', 'https://books.example.com/cb',
        '--post-logout-redirect-uri', 'https://books.example.com/bye', '--json']),
      cli(['clients', 'add', '--name', 'Plain', '--redirect-uri', 'https://plain.example.com/cb']),
      cli(['clients', 'add', '--name', 'Phone', '--public', '--redirect-uri', 'http://127.0.0.1:7777/cb', '--json']),
      cli(['clients', 'add', '--name', 'Legacy', '--no-pkce', '--redirect-uri', 'https://legacy.example.com/cb', '--json']),
    ]);
    assert.equal(json<Record<string, unknown>>(legacy).pkce_optional, true);
    const c = json<Record<string, unknown>>(confidential);
    assert.match(String(c.client_id), /^[A-Za-z0-9_-]{20,}$/);
    assert.match(String(c.client_secret), /^[A-Za-z0-9_-]{40,}$/);
    assert.equal(c.token_endpoint_auth_method, 'client_secret_basic');
    assert.deepEqual(c.redirect_uris, ['http://localhost:9999/cb', 'https://books.example.com/cb']);
    assert.deepEqual(c.post_logout_redirect_uris, ['https://books.example.com/bye']);
    assert.deepEqual(c.grant_types, ['authorization_code', 'refresh_token']);
    assert.equal(c.pkce_optional, undefined, 'PKCE is required unless --no-pkce');
    made.client = toRegistered(c);

    const id = /^client_id:\s+(\S+)$/m.exec(ok(plain).stdout)?.[1];
    const secret = /^client_secret:\s+(\S+)$/m.exec(plain.stdout)?.[1];
    assert.ok(id && secret && secret.length >= 40, plain.stdout);
    assert.match(plain.stdout, /not shown again/);

    const p = json<Record<string, unknown>>(pub);
    assert.equal(p.client_secret, null);
    assert.equal(p.token_endpoint_auth_method, 'none');
    made.publicId = String(p.client_id);
  });

  it('clients add --first-party (or --skip-consent): an app whose users are never asked for consent', async () => {
    const [first, skip] = await Promise.all([
      cli(['clients', 'add', '--name', 'Intranet', '--first-party', '--redirect-uri', 'https://intranet.example.com/cb', '--json']),
      cli(['clients', 'add', '--name', 'Wiki', '--skip-consent', '--redirect-uri', 'https://wiki.example.com/cb', '--json']),
    ]);
    const registered = [json<Record<string, unknown>>(first), json<Record<string, unknown>>(skip)];
    for (const c of registered) assert.equal(c.first_party, true);
    assert.equal(made.client?.metadata.first_party, undefined, 'an ordinary client asks for consent');
    // Gone again, so the scenarios that list the clients see only theirs.
    for (const c of registered) ok(await cli(['clients', 'remove', String(c.client_id)]));
  });

  it('clients add: refuses http on a public host, wildcards, relative URIs, unknown grant types and auth methods, naming the problem', async () => {
    const add = (...args: string[]) => cli(['clients', 'add', '--name', 'Bad', ...args]);
    const [httpHost, wildcard, relative, grant, method, publicNoPkce] = await Promise.all([
      add('--redirect-uri', 'http://app.example.com/cb'),
      add('--redirect-uri', 'https://app.example.com/*'),
      add('--redirect-uri', '/cb'),
      add('--redirect-uri', 'https://app.example.com/cb', '--grant-type', 'password'),
      add('--redirect-uri', 'https://app.example.com/cb', '--auth-method', 'private_key_jwt'),
      add('--redirect-uri', 'https://app.example.com/cb', '--public', '--no-pkce'),
    ]);
    refused(httpHost, /http:\/\/app\.example\.com\/cb must use https/);
    refused(wildcard, /https:\/\/app\.example\.com\/\* must not contain wildcards/);
    refused(relative, /\/cb must be an absolute URL/);
    refused(grant, /grant type must be one of authorization_code/);
    refused(method, /auth method must be one of client_secret_basic/);
    refused(publicNoPkce, /a public client must use PKCE/);
  });

  it('clients list: shows the registered clients, none of the refused ones, and no secret', async () => {
    const [asJson, asTable] = await Promise.all([cli(['clients', 'list', '--json']), cli(['clients', 'list'])]);
    const clients = json<Record<string, unknown>[]>(asJson);
    assert.deepEqual(clients.map((c) => c.name).sort(), ['Books', 'Legacy', 'Phone', 'Plain']);
    const books = clients.find((c) => c.client_id === made.client!.clientId);
    assert.deepEqual(books?.redirect_uris, made.client!.metadata.redirect_uris);
    for (const out of [asJson.stdout, ok(asTable).stdout]) {
      assert.ok(!out.includes(made.client!.clientSecret!), 'the secret is never listed');
      assert.doesNotMatch(out, /client_secret"|secret_sealed/);
    }
    assert.match(asTable.stdout, /^CLIENT_ID\s+NAME\s+AUTH\s+GRANTS\s+REDIRECT URIS\n/);
    assert.match(asTable.stdout, new RegExp(`${made.client!.clientId}\\s+Books\\s+client_secret_basic\\s+authorization_code,refresh_token\\s+http://localhost:9999/cb https://books.example.com/cb`));
  });

  it('clients remove: removes a client; removing an unknown id fails', async () => {
    const id = made.publicId!;
    const [removed, unknown] = await Promise.all([cli(['clients', 'remove', id]), cli(['clients', 'remove', 'no-such-client'])]);
    assert.equal(ok(removed).stdout, `removed client ${id}\n`);
    refused(unknown, /no client with id no-such-client/);
    const list = await cli(['clients', 'list', '--json']);
    assert.deepEqual(json<Record<string, unknown>[]>(list).map((c) => c.name).sort(), ['Books', 'Legacy', 'Plain']);
  });

  it('keys list and keys rotate: a new kid per algorithm, published first and signing later (at once with --now), the old ones listed as retired', async () => {
    const listed = json<KeyView[]>(await cli(['keys', 'list', '--json']));
    const active = listed.filter((k) => k.state === 'active');
    assert.deepEqual(active.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
    assert.equal(new Set(listed.map((k) => k.kid)).size, listed.length, 'distinct kids');
    const staged = json<{ rotated: string[]; signsAfterSeconds: number }>(await cli(['keys', 'rotate', '--json']));
    assert.equal(staged.rotated.length, 3);
    assert.ok(staged.signsAfterSeconds > 0);
    const waiting = json<KeyView[]>(await cli(['keys', 'list', '--json'])).filter((k) => staged.rotated.includes(k.kid));
    assert.equal(waiting.length, 3);
    for (const k of waiting) {
      // Published, not signing yet; a server refreshing its keys every second here may have promoted it since.
      if (k.state === 'active') continue;
      assert.equal(k.state, 'next');
      assert.ok(Math.abs(Date.parse(k.activatesAt!) - Date.parse(k.createdAt) - staged.signsAfterSeconds * 1000) < 5000);
    }

    const kids = json<{ rotated: string[] }>(await cli(['keys', 'rotate', '--now', '--json'])).rotated;
    assert.equal(kids.length, 3);

    const keys = json<KeyView[]>(await cli(['keys', 'list', '--json']));
    for (const k of waiting) assert.equal(keys.find((x) => x.kid === k.kid)?.state, 'retired', 'the keys still waiting are withdrawn by --now');
    const nowActive = keys.filter((k) => k.state === 'active');
    assert.deepEqual(nowActive.map((k) => k.kid).sort(), [...kids].sort(), 'the rotated kids are the active ones');
    assert.deepEqual(nowActive.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
    for (const old of active) {
      const k = keys.find((x) => x.kid === old.kid);
      assert.equal(k?.state, 'retired', `${old.alg} ${old.kid} is retired`);
      assert.ok(Date.parse(k!.publishedUntil) > Date.now() + 3600_000, 'still published for the tokens it signed');
    }
    for (const kid of kids) assert.ok(!listed.some((k) => k.kid === kid), 'new kids are new');
    made.rotated = kids;
  });

  it('an unknown command prints the usage and fails', async () => {
    refused(await cli(['frobnicate', '--now']), /unknown command: frobnicate --now/, /Usage: latchkey <command> \[options\]/, /clients add --name N/);
  });

  it('audit export and audit verify: every command above left its row with the CLI as actor, refusals as denied, no secret; the chain verifies', async () => {
    const [all, denied] = await Promise.all([cli(['audit', 'export']), cli(['audit', 'export', '--format', 'csv', '--result', 'denied'])]);
    const rows = ok(all).stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { action: string; actor_type: string; result: string });
    const actions = new Set(rows.map((r) => r.action));
    for (const action of ['users.add', 'users.list', 'clients.add', 'clients.list', 'clients.remove', 'keys.list', 'keys.rotate']) assert.ok(actions.has(action), action);
    // Besides the first administrator's own row (the setup page, when the run had one).
    assert.ok(rows.filter((r) => r.action !== 'setup.first_admin').every((r) => r.actor_type === 'cli'));
    assert.ok(rows.some((r) => r.action === 'users.add' && r.result === 'denied'), 'the refused users');
    assert.match(ok(denied).stdout, /^seq,time,actor_type,actor_id,actor_acr,ip,user_agent,request_id,action,target_type,target_id,result,reason,before,after,prev_hash,hash\r\n/);
    assert.ok(denied.stdout.includes(',clients.remove,client,no-such-client,denied,client.not_found: no client with id no-such-client,'), denied.stdout);
    assert.ok(!all.stdout.includes(made.client!.clientSecret!), 'never the client secret');
    assert.ok(!all.stdout.includes(ERIN_PASSWORD), 'never a password');
    assert.match(ok(await cli(['audit', 'verify'])).stdout, /^audit log intact: \d+ row\(s\) verified, from the first row to row \d+\n$/);
  });
}

/** Polls `check` until it returns true or `ms` pass. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The ID token of a code + PKCE sign-in by `user` through `client` at `issuer`: its kid, after checking the claims. */
async function signInKid(issuer: string, client: RegisteredClient, user: { id?: string; email: string; password: string }): Promise<string> {
  const rp = await RelyingParty.create(issuer, client);
  const { tokens, claims } = await rp.signIn(new CookieClient(issuer), user);
  assert.equal(claims.iss, issuer);
  if (user.id) assert.equal(claims.sub, user.id);
  assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
  const { header } = decodeJwt(tokens.id_token!);
  assert.equal(header.alg, 'RS256');
  return header.kid!;
}

// The command scenarios run once per run, on the run's database (like every suite): on PostgreSQL when
// LATCHKEY_TEST_DATABASE_URL is set, otherwise on the embedded database through the running server's admin
// socket. The embedded server process (setup link, socket, single owner, SIGTERM) is tested in both runs.
describe('latchkey CLI', { concurrency: true }, () => {
  describe('on PostgreSQL', { concurrency: false, skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
    let database: Awaited<ReturnType<typeof createTestDatabaseUrl>>;
    let server: TestServer | undefined;
    const made: Partial<Made> = {};
    const cli = cliFor(() => ({ LATCHKEY_DATABASE_URL: database.url }));

    before(async () => {
      database = await createTestDatabaseUrl();
    });
    after(async () => {
      await server?.stop();
      await database?.drop();
    });

    // No server has started on this database: `clients add` runs before any signing key exists.
    commandScenarios(cli, { freshDatabase: true }, made);

    it('a user and a client added by the CLI complete a code + PKCE sign-in on a server sharing the database', async () => {
      server = await startTestServer({ db: { database: openDatabase({ url: database.url }), url: database.url, drop: async () => {} } });
      const published = (await fetchJwks(server.url)).map((k) => k.kid);
      for (const kid of made.rotated!) assert.ok(published.includes(kid), 'the server serves the keys the CLI rotated');
      assert.ok(made.rotated!.includes(await signInKid(server.url, made.client!, made.erin!)), 'signed with the key the CLI made active');

      ok(await cli(['clients', 'remove', made.client!.clientId]));
      const { url } = await (await RelyingParty.create(server.url, made.client!)).authorization();
      const page = await new CookieClient(server.url).follow(url);
      assert.equal(page.stoppedAt, undefined);
      assert.equal(page.status, 400, 'a client removed by the CLI can no longer start a sign-in');
    });
  });

  describe('on the embedded database, with the server running as its own process', { concurrency: false }, () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-cli-'));
    const configFile = path.join(dataDir, 'config.yaml');
    const env = (): Env => ({ LATCHKEY_DATA_DIR: dataDir, LATCHKEY_CONFIG: configFile });
    const cli = cliFor(env);
    const made: Partial<Made> = {};
    const admin = { email: 'root@example.com', password: 'the first administrator' };
    let issuer: string;
    let server: ReturnType<typeof node> | undefined;
    let setupLink: string;

    const startServerProcess = (port: number) => node('src/main.ts', [], { ...env(), LATCHKEY_PORT: String(port), LATCHKEY_HOST: '127.0.0.1' });

    before(async () => {
      // Running servers look for rotated keys every second here (30 s by default).
      writeFileSync(configFile, 'keys:\n  refreshSeconds: 1\n');
    });
    after(async () => {
      if (server && server.exitCode === null && server.signalCode === null) {
        server.kill('SIGKILL');
        await server.exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('migrate: prepares a fresh embedded database before any server ran', async () => {
      assert.equal(ok(await cli(['migrate'])).stdout, APPLIED_ALL);
      assert.match(APPLIED_ALL, /^applied \d+ migration\(s\): 001_initial/);
      assert.ok(existsSync(path.join(dataDir, 'pglite')), 'the database lives in the data directory');
    });

    it('starts the server, which prints the one-time setup link on stdout while no admin exists', async () => {
      const port = await freePort();
      issuer = `http://localhost:${port}`;
      server = startServerProcess(port);
      await eventually(async () => {
        if (server!.exitCode !== null) assert.fail(`the server exited ${server!.exitCode}: ${server!.output.stderr}`);
        return server!.output.stdout.includes('Latchkey is running');
      }, 30_000, 'the server to start');
      const ready = await fetch(`${issuer}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ok', database: 'ok' });
      const { stdout } = server.output;
      assert.ok(stdout.includes(`Issuer: ${issuer}`));
      assert.ok(stdout.includes(`Database: embedded, in ${dataDir}`));
      assert.match(stdout, /No administrator exists yet/);
      const link = /^\s+(http:\/\/\S+\/setup\?token=[A-Za-z0-9_-]{40,})$/m.exec(stdout)?.[1];
      assert.ok(link, `a setup link in:\n${stdout}`);
      assert.ok(link.startsWith(`${issuer}/setup?token=`));
      setupLink = link;
      const token = new URL(link).searchParams.get('token')!;
      assert.ok(!server.output.stderr.includes(token), 'the setup token is not logged');
      assert.ok(existsSync(path.join(dataDir, 'admin.sock')), 'the server listens on its admin socket');
    });

    it('a second server on the same data directory refuses to start, with a clear message', async () => {
      const second = startServerProcess(await freePort());
      assert.equal(await second.exited, 1);
      assert.ok(second.output.stderr.includes(`another Latchkey process is already using the embedded database in ${dataDir}`), second.output.stderr);
      assert.doesNotMatch(second.output.stdout, /Latchkey is running/);
      assert.equal((await fetch(`${issuer}/readyz`)).status, 200, 'the first server is unharmed');
    });

    it('the setup link opens the setup page; the form needs its CSRF token, then creates the admin; the link is single use', async () => {
      const browser = new CookieClient(issuer);
      const page = await browser.follow(setupLink);
      assert.equal(page.status, 200);
      assert.match(page.body, /Create the first administrator/);
      assert.equal(page.headers.get('cache-control'), 'no-store');

      const forged = await browser.request('/setup', { form: { token: new URL(setupLink).searchParams.get('token')!, ...admin } });
      assert.equal(forged.status, 403, 'no CSRF token, no admin');
      const short = await browser.submit(page, '/setup', { email: admin.email, password: 'short' });
      assert.equal(short.status, 400);
      assert.match(short.body, /at least 8 characters/);

      const done = await browser.submit(page, '/setup', { ...admin, name: 'Root' });
      assert.equal(done.status, 200);
      assert.match(done.body, /Administrator created/);
      assert.match(done.body, /root@example\.com/);

      assert.equal((await new CookieClient(issuer).follow(setupLink)).status, 404, 'the link works once');
      const replay = await browser.submit(page, '/setup', { email: 'mallory@example.com', password: 'mallory wants in too' });
      assert.equal(replay.status, 404);
      const users = json<UserView[]>(await cli(['users', 'list', '--json']));
      assert.deepEqual(users.map((u) => [u.email, u.roles]), [[admin.email, ['admin']]]);
    });

    if (TEST_DATABASE_URL) {
      it('runs commands through the running server\'s admin socket', async () => {
        const [client, rotated] = await Promise.all([
          cli(['clients', 'add', '--name', 'Socket', '--redirect-uri', 'http://localhost:9999/cb', '--json']),
          cli(['keys', 'rotate', '--json']),
        ]);
        made.client = toRegistered(json<Record<string, unknown>>(client));
        made.rotated = json<{ rotated: string[] }>(rotated).rotated;
        assert.equal(made.rotated.length, 3);
      });
    } else {
      describe('commands through the running server\'s admin socket', () => {
        commandScenarios(cli, { freshDatabase: false }, made);
      });
    }

    it('audit export and audit verify run in the server through its admin socket, the export streamed to stdout', async () => {
      const [exported, verified] = await Promise.all([cli(['audit', 'export', '--actor', 'cli']), cli(['audit', 'verify', '--json'])]);
      const rows = ok(exported).stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { action: string; actor_type: string });
      assert.ok(rows.some((r) => r.action === 'clients.add' || r.action === 'keys.rotate'), exported.stdout);
      assert.ok(rows.every((r) => r.actor_type === 'cli'));
      assert.equal(json<{ ok: boolean }>(verified).ok, true);
    });

    it('a client added through the socket signs users in at the running server, which picks up the keys rotated through it', async () => {
      await eventually(async () => {
        const kids = (await fetchJwks(issuer).catch(() => [])).map((k) => k.kid);
        return made.rotated!.every((kid) => kids.includes(kid));
      }, 10_000, 'the server to publish the rotated keys');
      // Published first, signing two key refreshes later (keys.refreshSeconds is 1 here), when one of the
      // server's refreshes promotes them (on the embedded database the scenarios above ended with --now).
      await eventually(async () => made.rotated!.includes(await signInKid(issuer, made.client!, admin)), 10_000, 'the server to sign with the rotated keys');
      for (const user of [admin, ...(made.erin ? [made.erin] : [])]) {
        assert.ok(made.rotated!.includes(await signInKid(issuer, made.client!, user)));
      }
    });

    it('SIGTERM stops the server with exit code 0; the CLI then opens the database itself and finds what the server stored', async () => {
      assert.ok(server && server.exitCode === null);
      server.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      assert.equal(server.signalCode, null, 'it exited by itself');
      await assert.rejects(fetch(`${issuer}/healthz`), 'nothing listens any more');
      const clients = json<Record<string, unknown>[]>(await cli(['clients', 'list', '--json']));
      assert.ok(clients.some((c) => c.client_id === made.client!.clientId), 'the client added through the socket is in the database');
    });

    it('several CLI processes at once, with no server, take turns on the embedded database instead of opening it together', async () => {
      const emails = [0, 1, 2, 3].map((i) => `parallel-${i}@example.com`);
      const runs = await Promise.all(emails.map((email) => cli(['users', 'add', '--email', email, '--password-stdin'], 'a parallel password\n')));
      for (const r of runs) ok(r);
      const users = json<{ email: string }[]>(await cli(['users', 'list', '--json']));
      for (const email of emails) assert.ok(users.some((u) => u.email === email), `${email} was stored`);
    });
  });
});
