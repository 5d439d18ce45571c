import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { responseParams } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const ONE = 'urn:latchkey:acr:1fa';
const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';

describe('assurance levels requested by relying parties', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let strictRp: RelyingParty;
  // A user with only a password: the highest level they can reach is 1fa.
  const carol = { email: 'carol@example.com', password: 'carol only has a password' };

  before(async () => {
    server = await startTestServer();
    await server.addUser(carol);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: [REDIRECT] }));
    strictRp = await RelyingParty.create(server.url, await server.addClient({ name: 'Bank', redirectUris: [REDIRECT], minimumAcr: MFA }));
  });
  after(() => server.stop());

  const isLoginPage = (page: Page) => /\/login"/.test(page.body);

  /** A browser with a 1fa session and a grant for Shop's default scopes. */
  async function signedInBrowser() {
    const browser = new CookieClient(server.url);
    const { claims } = await rp.signIn(browser, carol);
    assert.equal(claims.acr, ONE);
    return { browser, claims };
  }

  /**
   * A user without a possession method, asked for mfa: the page says how to add one, and going back
   * gives the app unmet_authentication_requirements, never a code.
   */
  async function assertLedToEnrollThenRefused(browser: CookieClient, page: Page) {
    assert.equal(page.status, 200);
    assert.match(page.body, /Two-step verification needed/);
    assert.match(page.body, /href="\/account\/security"/, 'a way to add a method');
    assert.doesNotMatch(page.body, /\/login"/, 'not the password again');
    assertErrorAtRedirect(await browser.submit(page, '/unmet'), 'unmet_authentication_requirements');
  }

  /** Asserts the browser ended at the redirect URI with `error` and without a code. */
  function assertErrorAtRedirect(page: Page & { stoppedAt?: string }, error: string) {
    assert.ok(page.stoppedAt?.startsWith(REDIRECT), `sent back to the app, got ${page.status} ${page.url}`);
    const params = responseParams(page.stoppedAt);
    assert.equal(params.get('error'), error);
    assert.equal(params.get('code'), null, 'never a code at a lower level');
  }

  it('needs no new sign-in when the 1fa session meets acr_values=1fa (prompt=none succeeds)', async () => {
    const { browser, claims } = await signedInBrowser();
    const req = await rp.authorization({ acr_values: ONE, prompt: 'none' });
    const page = await browser.follow(req.url);
    assert.ok(page.stoppedAt, 'straight back to the app');
    const tokens = await rp.callback(page.stoppedAt, req.checks);
    assert.equal(tokens.claims()!.acr, ONE);
    assert.equal(tokens.claims()!.auth_time, claims.auth_time);
  });

  it('lets an RP that accepts either level (acr_values "mfa 1fa") sign a password-only user in at 1fa', async () => {
    const { claims } = await rp.signIn(new CookieClient(server.url), carol, { acr_values: `${MFA} ${ONE}` });
    assert.equal(claims.acr, ONE);
  });

  it('leads a password-only user asked for acr_values=mfa to add a method after the password; going back gives unmet_authentication_requirements', async () => {
    const browser = new CookieClient(server.url);
    const req = await rp.authorization({ acr_values: MFA, state: 'mfa-state' });
    const loginPage = await browser.follow(req.url);
    assert.ok(isLoginPage(loginPage));
    const answer = await browser.submit(loginPage, '/login', carol);
    assert.equal(answer.stoppedAt, undefined, 'no code, and not yet back at the app');
    assert.match(answer.body, /Two-step verification needed/);
    const back = await browser.submit(answer, '/unmet');
    assertErrorAtRedirect(back, 'unmet_authentication_requirements');
    assert.equal(responseParams(back.stoppedAt).get('state'), 'mfa-state');
  });

  it('steps a 1fa session up for acr_values=mfa without the password again, and still refuses to issue a code at 1fa', async () => {
    const { browser } = await signedInBrowser();
    const req = await rp.authorization({ acr_values: MFA });
    const page = await browser.follow(req.url);
    assert.equal(page.stoppedAt, undefined, 'the 1fa session is not enough to go straight back');
    await assertLedToEnrollThenRefused(browser, page);
    // The session itself survives at 1fa: a 1fa request still works silently.
    const ok = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
    assert.ok(ok.stoppedAt && responseParams(ok.stoppedAt).get('code'));
  });

  it('answers prompt=none with acr_values=mfa on a 1fa session with login_required', async () => {
    const { browser } = await signedInBrowser();
    const page = await browser.follow((await rp.authorization({ acr_values: MFA, prompt: 'none' })).url);
    assertErrorAtRedirect(page, 'login_required');
  });

  describe('an essential acr claim in the claims parameter', () => {
    const claims = JSON.stringify({ id_token: { acr: { essential: true, values: [MFA] } } });

    it('ends with unmet_authentication_requirements after the password, never a 1fa token', async () => {
      const browser = new CookieClient(server.url);
      const loginPage = await browser.follow((await rp.authorization({ claims })).url);
      assert.ok(isLoginPage(loginPage));
      await assertLedToEnrollThenRefused(browser, await browser.submit(loginPage, '/login', carol));
    });

    it('is not satisfied by a 1fa session: prompt=none gives login_required', async () => {
      const { browser } = await signedInBrowser();
      const page = await browser.follow((await rp.authorization({ claims, prompt: 'none' })).url);
      assertErrorAtRedirect(page, 'login_required');
    });

    it('with a single essential value behaves the same', async () => {
      const { browser } = await signedInBrowser();
      const single = JSON.stringify({ id_token: { acr: { essential: true, value: MFA } } });
      const page = await browser.follow((await rp.authorization({ claims: single })).url);
      await assertLedToEnrollThenRefused(browser, page);
    });
  });

  describe('a client whose minimum level is mfa', () => {
    it('cannot get a code for a password-only user, even without asking for a level', async () => {
      const browser = new CookieClient(server.url);
      const loginPage = await browser.follow((await strictRp.authorization()).url);
      assert.ok(isLoginPage(loginPage));
      await assertLedToEnrollThenRefused(browser, await browser.submit(loginPage, '/login', carol));
    });

    it('cannot get a code by asking for 1fa explicitly', async () => {
      const browser = new CookieClient(server.url);
      const loginPage = await browser.follow((await strictRp.authorization({ acr_values: ONE })).url);
      await assertLedToEnrollThenRefused(browser, await browser.submit(loginPage, '/login', carol));
    });

    it('does not accept the 1fa session another app created: prompt=none gives login_required', async () => {
      const { browser } = await signedInBrowser();
      const page = await browser.follow((await strictRp.authorization({ prompt: 'none' })).url);
      assertErrorAtRedirect(page, 'login_required');
    });
  });

  it('gives access_denied at the redirect URI when the user cancels on the sign-in page', async () => {
    const browser = new CookieClient(server.url);
    const loginPage = await browser.follow((await rp.authorization({ state: 'cancel-state' })).url);
    const cancelled = await browser.submit(loginPage, '/abort');
    assertErrorAtRedirect(cancelled, 'access_denied');
    assert.equal(responseParams(cancelled.stoppedAt).get('state'), 'cancel-state');
    // Cancelling signed nobody in.
    const silent = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
    assertErrorAtRedirect(silent, 'login_required');
  });
});
