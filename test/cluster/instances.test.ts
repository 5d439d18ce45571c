import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient, csrfOf } from '../helpers/browser.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addRecoveryCodes, addTotp, awaitFreshStep, inFours, nowSeconds, pendingOf, totpCode } from '../helpers/two-step.ts';
import { startServerProcess } from './workers-process.ts';

/**
 * The suite's run with workers (LATCHKEY_WORKERS=2 npm test, on PostgreSQL): instance B is then the real
 * server as its own process with that many workers, so every race below is spread over three processes.
 */
const WORKERS = process.env.LATCHKEY_WORKERS && process.env.LATCHKEY_WORKERS !== '1' ? process.env.LATCHKEY_WORKERS : undefined;

/** Instance B: what the tests need of it is its address, and that it stops cleanly. */
interface Instance {
  url: string;
  stop(): Promise<void>;
}

async function workersInstance(a: TestServer, workers: string): Promise<Instance> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-instance-b-'));
  const b = await startServerProcess({ LATCHKEY_DATABASE_URL: a.db.url!, LATCHKEY_WORKERS: workers, LATCHKEY_ISSUER: a.url, LATCHKEY_LOG_LEVEL: 'warn', LATCHKEY_DATA_DIR: dataDir });
  const expected = workers === 'auto' ? Math.min(64, availableParallelism()) : Number(workers);
  assert.equal((await b.workerPids()).length, expected > 1 ? expected : 0, 'the worker processes below the primary');
  return {
    url: b.url,
    async stop() {
      assert.deepEqual(await b.stop(), { code: 0, signal: null }, b.output.stderr);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// Several instances behind a load balancer share one PostgreSQL database and one issuer; the embedded
// database belongs to one process, so this suite runs on PostgreSQL only.
describe(`two instances on one PostgreSQL database${WORKERS ? `, the second with ${WORKERS} workers` : ''}`, { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
  let a: TestServer;
  let b: Instance;
  const dave = { email: 'dave@example.com', password: 'dave-signs-in-on-one-instance' };

  before(async () => {
    a = await startTestServer();
    b = WORKERS ? await workersInstance(a, WORKERS) : await startTestServer({ db: a.db, config: { issuer: a.url } });
    await a.addUser(dave);
  });
  after(async () => {
    await b.stop();
    await a.stop();
  });

  /** A relying party whose back-channel requests (token, userinfo, JWKS) all land on instance B. */
  async function relyingPartyViaB(client: Awaited<ReturnType<TestServer['addClient']>>) {
    const config = await oidc.discovery(new URL(a.url), client.clientId, { client_secret: client.clientSecret! }, oidc.ClientSecretBasic(client.clientSecret!), {
      execute: [oidc.allowInsecureRequests],
    });
    config[oidc.customFetch] = (url, options) => fetch(url.replace(a.url, b.url), options as RequestInit);
    return config;
  }

  it('serves the same signing keys from both instances', async () => {
    const ka = (await (await fetch(`${a.url}/jwks`)).json()) as { keys: { kid: string }[] };
    const kb = (await (await fetch(`${b.url}/jwks`)).json()) as { keys: { kid: string }[] };
    assert.equal(ka.keys.length, 3);
    assert.deepEqual(ka.keys.map((k) => k.kid).sort(), kb.keys.map((k) => k.kid).sort());
  });

  it('lets a user sign in on one instance while the app redeems the code and refreshes on the other', async () => {
    const client = await a.addClient({ name: 'Spread', redirectUris: ['http://localhost:9999/cb'] });
    const rpA = await RelyingParty.create(a.url, client);
    const viaB = await relyingPartyViaB(client);
    const { url, checks } = await rpA.authorization({ scope: 'openid email offline_access' });
    const back = await drive(new CookieClient(a.url), url, dave);
    const tokens = await oidc.authorizationCodeGrant(viaB, new URL(back), checks);
    assert.equal(tokens.claims()!.acr, 'urn:latchkey:acr:1fa');
    const refreshed = await oidc.refreshTokenGrant(viaB, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
    const info = await oidc.fetchUserInfo(rpA.config, refreshed.access_token, tokens.claims()!.sub);
    assert.equal(info.email, dave.email, 'a token issued by B works at A');
  });

  it('redeems a code only once across instances', async () => {
    const client = await a.addClient({ name: 'Once', redirectUris: ['http://localhost:9999/cb'] });
    const rpA = await RelyingParty.create(a.url, client);
    const viaB = await relyingPartyViaB(client);
    const { url, checks } = await rpA.authorization();
    const back = await drive(new CookieClient(a.url), url, dave);
    const results = await Promise.allSettled([
      oidc.authorizationCodeGrant(viaB, new URL(back), checks),
      oidc.authorizationCodeGrant(rpA.config, new URL(back), checks),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.ok(ok.length <= 1, 'at most one redemption succeeds');
    assert.ok(results.some((r) => r.status === 'rejected'));
  });

  /**
   * 20 sign-ins of one user, each waiting on its second step; the same answer is sent for all of them at
   * once, half to each instance. Single use is one conditional write in the shared database: one wins.
   */
  async function race(user: { email: string; password: string }, fields: () => Record<string, string>, method?: string) {
    const client = await a.addClient({ name: `Race ${Math.random()}`, redirectUris: ['http://localhost:9999/cb'] });
    const rpA = await RelyingParty.create(a.url, client);
    const steps = await inFours(20, async () => {
      const browser = new CookieClient(a.url);
      const login = await browser.follow((await rpA.authorization({ acr_values: 'urn:latchkey:acr:mfa' })).url);
      let page = await browser.submit(login, '/login', user);
      if (method) page = await browser.follow(`${new URL(page.url).pathname}?method=${method}`);
      return { browser, page };
    });
    const answer = fields();
    const results = await Promise.all(steps.map(({ browser, page }, i) => {
      const action = new URL(page.url).pathname;
      const form = { csrf: csrfOf(page.body), pending: pendingOf(page, '/verify'), ...answer };
      return browser.request(`${i % 2 ? b.url : a.url}${action}`, { form, headers: { origin: a.url } });
    }));
    // A success is granted (sent on to /auth), or after a recovery code shows how many are left (then "Continue").
    return results.filter((r) => (r.status === 303 && /\/auth\//.test(r.headers.get('location') ?? '')) || (r.status === 200 && /\/continue"/.test(r.body))).length;
  }

  it('accepts one TOTP code once across both instances: 20 parallel submissions, exactly one success', async () => {
    const user = { email: 'totp-race@example.com', password: 'a password for the totp race' };
    const { id } = await a.addUser(user);
    const store = a.server.services.store;
    await addQuestion(store, (s) => a.server.services.hasher.hash(s), id);
    const app = await addTotp(store, id);
    await awaitFreshStep(15);
    assert.equal(await race(user, () => ({ code: totpCode(app.key, nowSeconds()) })), 1);
  });

  it('spends one recovery code once across both instances: 20 parallel submissions, exactly one success', async () => {
    const user = { email: 'recovery-race@example.com', password: 'a password for the recovery race' };
    const { id } = await a.addUser(user);
    const store = a.server.services.store;
    await addQuestion(store, (s) => a.server.services.hasher.hash(s), id);
    await addTotp(store, id);
    const [code] = await addRecoveryCodes(store, id);
    const recovery = (await store.authenticators.listForUser(id)).find((x) => x.kind === 'recovery-code')!;
    assert.equal(await race(user, () => ({ code: code! }), recovery.id), 1);
    assert.equal(await store.codes.countLive('recovery_code', id), 9);
  });
});
