import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// Several instances behind a load balancer share one PostgreSQL database and one issuer; the embedded
// database belongs to one process, so this suite runs on PostgreSQL only.
describe('two instances on one PostgreSQL database', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
  let a: TestServer;
  let b: TestServer;
  const dave = { email: 'dave@example.com', password: 'dave-signs-in-on-one-instance' };

  before(async () => {
    a = await startTestServer();
    b = await startTestServer({ db: a.db, config: { issuer: a.url } });
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
});
