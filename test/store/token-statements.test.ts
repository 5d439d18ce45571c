/**
 * How many statements the token endpoints make, on the real server: every statement reaches the database
 * through a connection from knex's pool (the query builder's and the prepared ones alike), so counting the
 * queries made on those connections during one request counts them all. The fewest over a few requests
 * is taken, so that a background statement (a purge, a key check) meanwhile cannot add to it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { countQueries } from './count-queries.ts';

const REDIRECT = 'http://localhost:9999/cb';
const TRIES = 5;

describe('statements per token request', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let worker: RelyingParty;
  let counter: { readonly count: number };
  const user = { email: 'stella@example.com', password: 'stella counts her statements' };

  /** The fewest statements `request` made over a few tries. */
  const fewest = async (request: () => Promise<unknown>): Promise<number> => {
    let least = Infinity;
    for (let i = 0; i < TRIES; i += 1) {
      const before = counter.count;
      await request();
      least = Math.min(least, counter.count - before);
    }
    return least;
  };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...user, name: 'Stella' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: [REDIRECT] }));
    worker = await RelyingParty.create(server.url, await server.addClient({ name: 'Worker', grantTypes: ['client_credentials'] }));
    counter = countQueries(server);
  });
  after(() => server.stop());

  it('introspects an access token of a grant in one statement: the token as either kind, with its grant', async () => {
    const { tokens } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
    const statements = await fewest(async () => {
      const seen = await oidc.tokenIntrospection(rp.config, tokens.access_token);
      assert.equal(seen.active, true);
      assert.equal(seen.client_id, rp.client.clientId);
    });
    assert.equal(statements, 1);
  });

  it('introspects a client-credentials token in one statement', async () => {
    const { access_token } = await oidc.clientCredentialsGrant(worker.config);
    const statements = await fewest(async () => assert.equal((await oidc.tokenIntrospection(worker.config, access_token)).active, true));
    assert.equal(statements, 1);
  });

  it('answers an unknown token inactive in one statement', async () => {
    const statements = await fewest(async () => assert.equal((await oidc.tokenIntrospection(rp.config, 'no-such-token')).active, false));
    assert.equal(statements, 1);
  });

  it('issues a client-credentials token in one statement', async () => {
    assert.equal(await fewest(() => oidc.clientCredentialsGrant(worker.config)), 1);
  });

  it('refreshes in two statements: the refresh token with its grant and account, then the new access token', async () => {
    const { tokens } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
    const statements = await fewest(async () => {
      const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
      assert.ok(refreshed.id_token);
    });
    assert.equal(statements, 2);
  });

  it('answers userinfo for a token that outlives the session (offline_access) in one statement: the token with its grant and account', async () => {
    const { tokens, claims } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
    const statements = await fewest(async () => assert.equal((await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub)).email, user.email));
    assert.equal(statements, 1);
  });

  it('keeps answering after a migration adds a column to users and to clients while it serves (the prepared statements name their columns)', async () => {
    const { tokens, claims } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
    // Prepared on every pooled connection first, so that a result type fixed before the change would be caught.
    for (let i = 0; i < 12; i += 1) await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub);
    const knex = server.server.services.database.knex;
    await knex.raw('alter table users add column later_column text');
    await knex.raw('alter table clients add column later_column text');
    for (let i = 0; i < 12; i += 1) {
      assert.equal((await oidc.fetchUserInfo(rp.config, tokens.access_token, claims.sub)).email, user.email);
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true);
    }
    const fresh = await RelyingParty.create(server.url, await server.addClient({ name: 'Added after', grantTypes: ['client_credentials'] }));
    assert.ok((await oidc.clientCredentialsGrant(fresh.config)).access_token, 'a client not yet cached is read by the prepared lookup');
  });
});
