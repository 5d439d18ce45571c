import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('authorization code + PKCE sign-in', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const alice = { email: 'alice@example.com', password: 'correct horse battery staple' };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...alice, name: 'Alice Example' });
    const client = await server.addClient({ name: 'Test App', redirectUris: ['http://localhost:9999/cb'] });
    rp = await RelyingParty.create(server.url, client);
  });
  after(() => server.stop());

  it('signs in with a password and returns an ID token with acr, amr and auth_time', async () => {
    const browser = new CookieClient(server.url);
    const { tokens, claims } = await rp.signIn(browser, alice);
    assert.equal(claims.iss, server.url);
    assert.equal(claims.acr, 'urn:latchkey:acr:1fa');
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(typeof claims.auth_time, 'number');
    const info = await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub);
    assert.equal(info.email, alice.email);
    assert.equal(info.name, 'Alice Example');
  });
});
