/**
 * One authorization code redeemed many times at once, spread over two instances on PostgreSQL (one
 * instance on the embedded database): at most one redemption gets tokens, and because the code was
 * replayed, whatever it issued is revoked afterwards, in whichever order the requests ran (RFC 9700 §4.5.3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { postAsClient } from '../helpers/oauth.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';

describe('parallel redemptions of one authorization code', () => {
  let a: TestServer;
  let b: TestServer;
  let rp: RelyingParty;
  const user = { email: 'replayed@example.com', password: 'the code of this user is replayed' };

  before(async () => {
    a = await startTestServer();
    b = TEST_DATABASE_URL ? await startTestServer({ db: a.db, config: { issuer: a.url } }) : a;
    await a.addUser(user);
    rp = await RelyingParty.create(a.url, await a.addClient({ name: 'Replayed', redirectUris: [REDIRECT] }));
  });
  after(async () => {
    if (b !== a) await b.stop();
    await a.stop();
  });

  /** `n` token requests for one fresh code at once, half to each instance; the tokens of those that got any. */
  async function redeemInParallel(browser: CookieClient, n: number) {
    const { url, checks } = await rp.authorization({ scope: 'openid offline_access' });
    const code = new URL(await drive(browser, url, user)).searchParams.get('code')!;
    const answers = await Promise.all(Array.from({ length: n }, async (_, i) => {
      const res = await postAsClient(`${i % 2 ? b.url : a.url}/token`, rp.client,
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: checks.pkceCodeVerifier });
      return { status: res.status, body: (await res.json()) as { error?: string; access_token?: string; refresh_token?: string } };
    }));
    for (const x of answers) assert.ok(x.status === 200 || (x.status === 400 && x.body.error === 'invalid_grant'), `${x.status} ${JSON.stringify(x.body)}`);
    return answers.filter((x) => x.status === 200).map((x) => x.body);
  }

  for (const n of [10, 50]) {
    it(`gives at most one of ${n} parallel redemptions tokens, and revokes them, 20 times over`, async () => {
      const browser = new CookieClient(a.url);
      let winners = 0;
      for (let round = 0; round < 20; round++) {
        const won = await redeemInParallel(browser, n);
        assert.ok(won.length <= 1, `round ${round}: ${won.length} redemptions got tokens`);
        for (const tokens of won) {
          winners++;
          assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token!)).active, false, `round ${round}: the winner's access token is revoked`);
          assert.equal((await oidc.tokenIntrospection(rp.config, tokens.refresh_token!)).active, false, `round ${round}: the winner's refresh token is revoked`);
          await assert.rejects(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), (err: Error & { error?: string }) => err.error === 'invalid_grant');
          const me = await fetch(`${b.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
          assert.equal(me.status, 401, `round ${round}: userinfo refuses the winner's access token`);
        }
      }
      assert.ok(winners <= 20);
    });
  }

  it('still gives tokens to a code redeemed once', async () => {
    const { tokens } = await rp.signIn(new CookieClient(a.url), user, { scope: 'openid offline_access' });
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true);
    assert.ok((await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).access_token);
  });
});
