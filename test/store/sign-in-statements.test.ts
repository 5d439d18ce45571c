/**
 * How many statements one complete password sign-in makes on the real server, counted as
 * token-statements.test.ts counts them (every query on knex's pool connections, the prepared ones too):
 * /auth -> the sign-in page -> the password -> back at /auth -> the code at the redirect URI -> the code
 * exchanged at /token. As in the bench, a new browser each time, and a user who signed in to the app
 * before (their consent is remembered), with no second step. The fewest over a few sign-ins is taken, so
 * that a background statement (a purge, a key check) meanwhile cannot add to it. What the sign-in writes
 * in fewer statements must all still be there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { countQueries } from './count-queries.ts';

const REDIRECT = 'http://localhost:9999/cb';
const TRIES = 3;
const MOST_STATEMENTS = 16;

describe('statements per complete password sign-in', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let counter: { readonly count: number };
  const user = { email: 'sigrid@example.com', password: 'sigrid signs in with few statements' };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...user, name: 'Sigrid' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: [REDIRECT] }));
    // The first sign-in asks for consent, which is remembered: later ones go straight back to the app.
    await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
    counter = countQueries(server);
  });
  after(() => server.stop());

  it(`signs in (pages, password, code, code exchange) in at most ${MOST_STATEMENTS} statements, and writes all it wrote before`, async () => {
    const knex = server.server.services.database.knex;
    const userId = (await knex('users').where({ email: user.email }).first('id')).id as string;
    const succeededBefore = Number((await knex('security_events').where({ user_id: userId, type: 'sign_in.succeeded' }).count('id as n'))[0]!.n);
    let least = Infinity;
    let lastSub = '';
    for (let i = 0; i < TRIES; i += 1) {
      const start = counter.count;
      const { tokens, claims } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
      least = Math.min(least, counter.count - start);
      assert.ok(tokens.access_token && tokens.id_token);
      lastSub = claims.sub;
    }
    assert.equal(lastSub, userId);
    assert.ok(least <= MOST_STATEMENTS, `one sign-in made ${least} statements (at most ${MOST_STATEMENTS})`);

    // Each sign-in stored its event, a device (a new browser each time), its session and where it was used.
    const succeeded = Number((await knex('security_events').where({ user_id: userId, type: 'sign_in.succeeded' }).count('id as n'))[0]!.n);
    assert.equal(succeeded - succeededBefore, TRIES);
    const devices = Number((await knex('devices').where({ user_id: userId }).count('id as n'))[0]!.n);
    assert.equal(devices, TRIES + 1);
    const sessions = await knex('oidc_payloads').where({ kind: 'Session', account_id: userId }).select('uid');
    assert.equal(sessions.length, TRIES + 1);
    const activity = await knex('session_activity').whereIn('session_uid', sessions.map((s) => s.uid as string)).select('session_uid', 'user_id', 'ip');
    assert.equal(activity.length, TRIES + 1, 'every session has its activity');
    assert.ok(activity.every((a) => a.user_id === userId && a.ip));
    // The failure counter of the account was cleared, and its consent stayed remembered (no consent page).
    assert.equal((await knex('counters').where('key', 'like', 'acct:%')).length, 0);
  });
});
