import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('who may introspect and revoke a token', () => {
  let server: TestServer;
  let owner: RelyingParty;
  let stranger: RelyingParty;
  let resourceServer: RelyingParty;

  before(async () => {
    server = await startTestServer();
    owner = await RelyingParty.create(server.url, await server.addClient({ name: 'Owner', grantTypes: ['client_credentials'] }));
    stranger = await RelyingParty.create(server.url, await server.addClient({ name: 'Stranger', grantTypes: ['client_credentials'] }));
    resourceServer = await RelyingParty.create(server.url, await server.addClient({ name: 'API', grantTypes: ['client_credentials'], resourceServer: true }));
  });
  after(() => server.stop());

  it('lets a client introspect its own token', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(owner.config);
    assert.equal((await oidc.tokenIntrospection(owner.config, access_token)).active, true);
  });

  it('tells another client nothing about a token that is not its own', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(owner.config);
    const seen = await oidc.tokenIntrospection(stranger.config, access_token);
    assert.equal(seen.active, false);
    assert.deepEqual(Object.keys(seen), ['active'], 'no claims leak');
  });

  it('lets a client registered as a resource server introspect any token', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(owner.config);
    const seen = await oidc.tokenIntrospection(resourceServer.config, access_token);
    assert.equal(seen.active, true);
    assert.equal(seen.client_id, owner.client.clientId);
  });

  it('refuses to let another client revoke a token, which stays active', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(owner.config);
    await assert.rejects(oidc.tokenRevocation(stranger.config, access_token));
    assert.equal((await oidc.tokenIntrospection(owner.config, access_token)).active, true);
  });

  it('refuses resource-server registration for a public client', async () => {
    await assert.rejects(server.addClient({ name: 'Bad', public: true, resourceServer: true, redirectUris: ['http://localhost:9999/cb'] }), /resource server must authenticate/);
  });
});
