/**
 * A sign-in resumes once. The password form sent twice in parallel: the first answer's redirect resumes
 * the interaction (oidc-provider deletes it) while the second request is still checking the password;
 * the second must not write the interaction back, or whoever kept its resume cookies could resume it
 * again, without the password, for a second code and a second session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';

describe('an interaction resumes once', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let slowNext = false;
  const user = { email: 'rhea@example.com', password: 'rhea sends the form twice' };

  before(async () => {
    server = await startTestServer();
    await server.addUser({ ...user, name: 'Rhea' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: [REDIRECT] }));
    // Consent given once, so the password's redirect resumes straight to the app.
    await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email' });
    // The second password check takes a while, so the first answer is followed meanwhile.
    const { hasher } = server.server.services;
    const verify = hasher.verify.bind(hasher);
    hasher.verify = async (hash: string, password: string) => {
      if (slowNext) {
        slowNext = false;
        await new Promise((r) => setTimeout(r, 800));
      }
      return verify(hash, password);
    };
  });
  after(() => server.stop());

  it('the slower of two submissions finds the sign-in resumed and gone: no second code, nothing written back', async () => {
    const browser = new CookieClient(server.url);
    const { url, checks } = await rp.authorization({ scope: 'openid email' });
    const page = await browser.follow(url);
    const form = findForm(page.body, '/login');
    const loginUrl = new URL(form.action, page.url).toString();
    const uid = /\/interaction\/([^/?]+)/.exec(loginUrl)![1]!;
    const fields = { ...form.hidden, ...user };

    const first = await browser.request(loginUrl, { form: fields });
    assert.equal(first.status, 303);
    const resumeCookies = [...browser.jar].filter(([name]) => name.startsWith('_interaction_resume'));
    assert.ok(resumeCookies.length > 0);

    slowNext = true;
    const second = browser.request(loginUrl, { form: fields });
    await new Promise((r) => setTimeout(r, 200));
    const resumed = await browser.follow(new URL(first.headers.get('location')!, first.url).toString());
    assert.ok(resumed.stoppedAt?.startsWith(REDIRECT), 'the first submission signs in');
    const late = await second;
    assert.equal(late.status, 400, 'the second finds the sign-in already finished');
    assert.match(late.body, /expired/);

    const row = await server.server.services.database.knex('oidc_payloads').where({ kind: 'Interaction', id: uid }).first();
    assert.equal(row, undefined, 'the resumed interaction is not written back');

    // Whoever kept the resume cookies cannot resume it again.
    const other = new CookieClient(server.url);
    for (const [name, value] of resumeCookies) other.jar.set(name, value);
    const again = await other.follow(new URL(`/auth/${uid}`, server.url).toString());
    assert.ok(!again.stoppedAt?.includes('code='), `no second code: ${again.status} ${again.stoppedAt ?? ''}`);

    const tokens = await rp.callback(resumed.stoppedAt!, checks);
    assert.ok(tokens.access_token, 'the one code works');
  });
});
