import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IDToken } from 'openid-client';
import { CookieClient, csrfOf, type Page } from '../helpers/browser.ts';
import { rejectsWith, responseParams, sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addTotp, awaitFreshStep, awaitNextStep, nowSeconds, pendingOf, totpCode } from '../helpers/two-step.ts';

const ONE = 'urn:latchkey:acr:1fa';
const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
const ANSWER = 'Rex the dog';

type Landed = Page & { stoppedAt?: string };
type Request = Awaited<ReturnType<RelyingParty['authorization']>>;

/**
 * An authenticator app that never shows the same time step twice (a step once accepted is never accepted
 * again): the previous step first, then the current one, then it waits for the next.
 */
function authenticatorApp(key: Buffer) {
  let used = -1;
  return async function nextCode(): Promise<string> {
    await awaitFreshStep(4);
    let step = Math.floor(nowSeconds() / 30) - 1;
    if (step <= used) step = used + 1;
    if (step > Math.floor(nowSeconds() / 30)) await awaitNextStep();
    used = step;
    return totpCode(key, step * 30);
  };
}

interface TestUser {
  id: string;
  email: string;
  password: string;
  /** The next code of the user's authenticator app (when they have one). */
  code?: () => Promise<string>;
  totpId?: string;
  questionId?: string;
}

const isPasswordPage = (p: Page) => /action="\/interaction\/[^/"]+\/login"/.test(p.body) && /name="password"/.test(p.body);
const isAppCodePage = (p: Page) => /action="\/interaction\/[^/"]+\/verify"/.test(p.body) && /autocomplete="one-time-code"/.test(p.body);
const isQuestionPage = (p: Page) => /action="\/interaction\/[^/"]+\/verify"/.test(p.body) && /name="answer"/.test(p.body);
const isEnrollPage = (p: Page) => /Two-step verification needed/.test(p.body);
const where = (p: Landed) => `${p.status} ${p.stoppedAt ?? p.url}: ${p.body.slice(0, 300)}`;
const amrOf = (claims: IDToken) => [...((claims.amr as string[] | undefined) ?? [])].sort();
const uidOf = (p: Page) => /\/interaction\/([^/?#]+)/.exec(new URL(p.url).pathname)![1]!;

/** A browser holding exactly these cookies (another tab of the same browser, for probes that start interactions). */
function withJar(origin: string, jar: Map<string, string>): CookieClient {
  const browser = new CookieClient(origin);
  for (const [k, v] of jar) browser.jar.set(k, v);
  return browser;
}

/** Asserts the browser ended at the redirect URI with `error` and without a code. */
function assertErrorAtApp(page: Landed, error: string) {
  assert.ok(page.stoppedAt?.startsWith(REDIRECT), `sent back to the app, got ${where(page)}`);
  const params = responseParams(page.stoppedAt);
  assert.equal(params.get('error'), error);
  assert.equal(params.get('code'), null, 'never a code');
}

describe('policy and step-up through a relying party', () => {
  let server: TestServer;
  let rp: RelyingParty;
  let strictRp: RelyingParty;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: [REDIRECT] }));
    strictRp = await RelyingParty.create(server.url, await server.addClient({ name: 'Bank', redirectUris: [REDIRECT], minimumAcr: MFA }));
  });
  after(() => server.stop());

  const store = () => server.server.services.store;

  /** A fresh user per scenario: an authenticator app and/or a security question, and their setting. */
  async function newUser(opts: { totp?: boolean; question?: boolean; always?: boolean } = {}): Promise<TestUser> {
    const user: TestUser = await server.newUser('stepup');
    const { id } = user;
    if (opts.totp) {
      const app = await addTotp(store(), id);
      user.totpId = app.id;
      user.code = authenticatorApp(app.key);
    }
    if (opts.question) user.questionId = (await addQuestion(store(), (s) => server.server.services.hasher.hash(s), id)).id;
    if (opts.always) await store().users.setVerificationPreference(id, 'always');
    return user;
  }

  /** Starts an authorization at the app; the first page the browser is shown (or where it was sent). */
  async function open(browser: CookieClient, params: Record<string, string> = {}, app = rp): Promise<{ req: Request; page: Landed }> {
    const req = await app.authorization(params);
    return { req, page: await browser.follow(req.url) };
  }

  function password(browser: CookieClient, page: Landed, user: TestUser) {
    assert.ok(isPasswordPage(page), `the password page expected, got ${where(page)}`);
    return browser.submit(page, '/login', { email: user.email, password: user.password });
  }

  async function appCode(browser: CookieClient, page: Landed, user: TestUser) {
    assert.ok(isAppCodePage(page), `the authenticator app page expected, got ${where(page)}`);
    return browser.submit(page, '/verify', { code: await user.code!() });
  }

  /** Through the consent page when it is shown; the ID token the app gets for the code it was sent back with. */
  async function finish(browser: CookieClient, req: Request, page: Landed, app = rp): Promise<IDToken> {
    if (!page.stoppedAt && /\/confirm"/.test(page.body)) page = await browser.submit(page, '/confirm');
    assert.ok(page.stoppedAt, `back at the app expected, got ${where(page)}`);
    const tokens = await app.callback(page.stoppedAt, req.checks);
    return tokens.claims()!;
  }

  /** A silent authorization: where the browser is sent back to. */
  async function silent(browser: CookieClient, params: Record<string, string> = {}, app = rp) {
    return browser.follow((await app.authorization({ prompt: 'none', ...params })).url);
  }

  /**
   * A browser that knows the user (a completed sign-in there, so the device and network are known) and
   * holds a 1fa session: the first sign-in is asked for the app (a new device), the next one is not.
   */
  async function knownDeviceAt1fa(user: TestUser) {
    const browser = new CookieClient(server.url);
    let { req, page } = await open(browser);
    page = await password(browser, page, user);
    const first = await finish(browser, req, await appCode(browser, page, user));
    assert.equal(first.acr, MFA, 'the app code of the new-device step counts as a second factor');
    ({ req, page } = await open(browser, { prompt: 'login' }));
    const claims = await finish(browser, req, await password(browser, page, user));
    assert.equal(claims.acr, ONE);
    assert.deepEqual(amrOf(claims), ['pwd', 'rba']);
    return { browser, claims };
  }

  describe('step-up inside a session', () => {
    it('asks a 1fa session only for the app code when the app needs mfa, then rotates the session: the old cookie is dead', async () => {
      const user = await newUser({ totp: true });
      const { browser, claims: before } = await knownDeviceAt1fa(user);
      const oldSession = browser.jar.get('_session');
      assert.ok(oldSession);
      const oldJar = new Map(browser.jar);
      await sleep(1100); // auth_time counts seconds

      const { req, page } = await open(browser, { acr_values: MFA });
      assert.equal(page.stoppedAt, undefined, 'a 1fa session is not enough');
      assert.match(new URL(page.url).pathname, /^\/interaction\/[^/]+\/verify$/);
      assert.ok(isAppCodePage(page), where(page));
      assert.doesNotMatch(page.body, /name="password"/, 'the password is not asked again');
      const stepped = await finish(browser, req, await appCode(browser, page, user));
      assert.equal(stepped.sub, before.sub);
      assert.equal(stepped.acr, MFA);
      assert.deepEqual(amrOf(stepped), ['mfa', 'otp', 'pwd']);
      assert.ok((stepped.auth_time as number) > (before.auth_time as number), 'auth_time is the time of the step-up');

      const newSession = browser.jar.get('_session');
      assert.ok(newSession);
      assert.notEqual(newSession, oldSession, 'a new session id after the step-up');
      assertErrorAtApp(await silent(withJar(server.url, oldJar)), 'login_required');
      const ok = await silent(browser, { acr_values: MFA });
      assert.ok(ok.stoppedAt && responseParams(ok.stoppedAt).get('code'), 'the new session is at mfa');
    });

    it('refuses to open a security question for an mfa step-up, and asks for the app code instead', async () => {
      const user = await newUser({ totp: true, question: true });
      const browser = new CookieClient(server.url);
      // A new device: either method is offered; the question gives 1fa only.
      let { req, page } = await open(browser);
      page = await password(browser, page, user);
      assert.equal(page.stoppedAt, undefined);
      page = await browser.follow(`/interaction/${uidOf(page)}/verify?method=${user.questionId}`);
      assert.ok(isQuestionPage(page), where(page));
      const withQuestion = await finish(browser, req, await browser.submit(page, '/verify', { answer: ANSWER }));
      assert.equal(withQuestion.acr, ONE, 'password and security question are never mfa');
      assert.deepEqual(amrOf(withQuestion), ['kba', 'pwd', 'rba']);

      ({ req, page } = await open(browser, { acr_values: MFA }));
      assert.ok(isAppCodePage(page), where(page));
      const uid = uidOf(page);
      const asked = await browser.follow(`/interaction/${uid}/verify?method=${user.questionId}`);
      assert.ok(isAppCodePage(asked) && !isQuestionPage(asked), 'asking for the question still shows the app');
      const methods = await browser.follow(`/interaction/${uid}/verify/methods`);
      assert.equal(methods.status, 200);
      assert.doesNotMatch(methods.body, new RegExp(`method=${user.questionId}`), 'the question is not offered for mfa');
      const stepped = await finish(browser, req, await appCode(browser, asked, user));
      assert.equal(stepped.acr, MFA);
      assert.deepEqual(amrOf(stepped), ['kba', 'mfa', 'otp', 'pwd']);
    });

    it('treats an essential acr claim like acr_values: a 1fa session steps up with the app code only', async () => {
      const user = await newUser({ totp: true });
      const { browser } = await knownDeviceAt1fa(user);
      const claims = JSON.stringify({ id_token: { acr: { essential: true, values: [MFA] } } });
      const { req, page } = await open(browser, { claims });
      assert.ok(isAppCodePage(page), where(page));
      assert.doesNotMatch(page.body, /name="password"/);
      const stepped = await finish(browser, req, await appCode(browser, page, user));
      assert.equal(stepped.acr, MFA);
      assert.deepEqual(amrOf(stepped), ['mfa', 'otp', 'pwd']);
    });
  });

  describe('requests for a fresh sign-in', () => {
    /** A user signed in in a new browser before the app was added (1fa, the device known), who then verifies every sign-in. */
    async function alwaysUserSignedIn() {
      const user = await newUser();
      const browser = new CookieClient(server.url);
      const { req, page } = await open(browser);
      const claims = await finish(browser, req, await password(browser, page, user));
      assert.equal(claims.acr, ONE);
      const app = await addTotp(store(), user.id);
      user.code = authenticatorApp(app.key);
      await store().users.setVerificationPreference(user.id, 'always');
      return { user, browser, claims };
    }

    it('asks for the password again at max_age=0, and the app code too for a user who verifies every sign-in', async () => {
      const { user, browser, claims: before } = await alwaysUserSignedIn();
      await sleep(1100);
      let { req, page } = await open(browser, { max_age: '0' });
      assert.equal(page.stoppedAt, undefined, 'never straight back');
      page = await password(browser, page, user);
      assert.ok(isAppCodePage(page), `the app code after the password, got ${where(page)}`);
      const claims = await finish(browser, req, await appCode(browser, page, user));
      assert.equal(claims.acr, MFA);
      assert.ok((claims.auth_time as number) > (before.auth_time as number));

      // A user who verifies only when a sign-in looks risky, on a known device: the password alone.
      const risky = await newUser({ totp: true });
      const { browser: known } = await knownDeviceAt1fa(risky);
      ({ req, page } = await open(known, { max_age: '0' }));
      const again = await finish(known, req, await password(known, page, risky));
      assert.equal(again.acr, ONE);
    });

    it('asks for the password again once a small max_age has passed, and not before', async () => {
      const user = await newUser();
      const browser = new CookieClient(server.url);
      let { req, page } = await open(browser);
      await finish(browser, req, await password(browser, page, user));
      ({ req, page } = await open(browser, { max_age: '60' }));
      assert.ok(page.stoppedAt, `within max_age the session is enough, got ${where(page)}`);
      await sleep(2100);
      ({ req, page } = await open(browser, { max_age: '1' }));
      assert.equal(page.stoppedAt, undefined);
      const claims = await finish(browser, req, await password(browser, page, user));
      assert.ok(nowSeconds() - (claims.auth_time as number) <= 1, 'a fresh auth_time');
    });

    it('asks a first-time user of an app at prompt=login for the password and the second step once, consent page or not', async () => {
      const user = await newUser({ question: true });
      const browser = new CookieClient(server.url);
      let { req, page } = await open(browser, { prompt: 'login' });
      page = await password(browser, page, user);
      assert.ok(isQuestionPage(page), where(page));
      page = await browser.submit(page, '/verify', { answer: ANSWER });
      assert.match(page.body, /\/confirm"/, 'the consent page of a first visit');
      page = await browser.submit(page, '/confirm');
      assert.ok(page.stoppedAt, `back at the app after consenting, not at the password again: ${where(page)}`);
      const claims = await finish(browser, req, page);
      assert.deepEqual(amrOf(claims), ['kba', 'pwd', 'rba']);
    });

    it('asks for the password again at prompt=login, even with an mfa session, then the app code for an "always" user', async () => {
      const { user, browser } = await alwaysUserSignedIn();
      let { req, page } = await open(browser, { acr_values: MFA });
      const mfa = await finish(browser, req, await appCode(browser, page, user));
      assert.equal(mfa.acr, MFA);
      ({ req, page } = await open(browser, { prompt: 'login' }));
      assert.equal(page.stoppedAt, undefined);
      page = await password(browser, page, user);
      assert.ok(isAppCodePage(page), where(page));
      const claims = await finish(browser, req, await appCode(browser, page, user));
      assert.equal(claims.acr, MFA);
      assert.deepEqual(amrOf(claims), ['mfa', 'otp', 'pwd']);
    });
  });

  describe("the app's minimum and cancelling", () => {
    it('gives a client whose minimum level is mfa an mfa sign-in: the password, then the app code, no rba', async () => {
      const user = await newUser({ totp: true });
      const browser = new CookieClient(server.url);
      let { req, page } = await open(browser, {}, strictRp);
      page = await password(browser, page, user);
      assert.equal(page.stoppedAt, undefined, 'no code after the password alone');
      const claims = await finish(browser, req, await appCode(browser, page, user), strictRp);
      assert.equal(claims.acr, MFA);
      assert.deepEqual(amrOf(claims), ['mfa', 'otp', 'pwd']);
    });

    it('gives access_denied at the redirect URI when the user cancels on the second-step page, and signs nobody in', async () => {
      const user = await newUser({ totp: true });
      const browser = new CookieClient(server.url);
      const { page: login } = await open(browser, { state: 'cancel-second-step' });
      const second = await password(browser, login, user);
      assert.ok(isAppCodePage(second), where(second));
      const uid = uidOf(second);
      const cancelled = await browser.submit(second, '/abort');
      assertErrorAtApp(cancelled, 'access_denied');
      assert.equal(responseParams(cancelled.stoppedAt).get('state'), 'cancel-second-step');
      assertErrorAtApp(await silent(browser), 'login_required');
      assert.equal(await server.server.services.database.knex('sign_in_progress').where({ interaction_uid: uid }).first(), undefined,
        'nothing of the sign-in is kept');
    });
  });

  describe("the user's own setting", () => {
    it('"always": every sign-in asks for the app code, even on a known device, and amr carries no rba', async () => {
      const user = await newUser({ totp: true, always: true });
      const browser = new CookieClient(server.url);
      for (const params of [{}, { prompt: 'login' }] as Record<string, string>[]) {
        const { req, page: login } = await open(browser, params);
        const page = await password(browser, login, user);
        assert.ok(isAppCodePage(page), `asked at every sign-in, got ${where(page)}`);
        assert.doesNotMatch(page.body, /We don(&#39;|')t recognise this device/, 'the setting asks, not the risk rules');
        const claims = await finish(browser, req, await appCode(browser, page, user));
        assert.equal(claims.acr, MFA);
        assert.deepEqual(amrOf(claims), ['mfa', 'otp', 'pwd']);
      }
    });

    it('"risky": a new device is asked for a second step; a known one is not, and then amr has rba and no mfa', async () => {
      const user = await newUser({ totp: true });
      const fresh = new CookieClient(server.url);
      const { page } = await open(fresh);
      const asked = await password(fresh, page, user);
      assert.ok(isAppCodePage(asked), `a new device is asked, got ${where(asked)}`);
      assert.match(asked.body, /We don(&#39;|')t recognise this device\./);

      const { claims } = await knownDeviceAt1fa(user);
      assert.ok(!amrOf(claims).includes('mfa'));
      assert.ok(amrOf(claims).includes('rba'));
    });
  });

  describe('a sign-in with the second step still pending', () => {
    /** The password done in a new browser, the app code not yet: the browser on the second-step page. */
    async function halfSignedIn(user: TestUser) {
      const browser = new CookieClient(server.url);
      const { req, page } = await open(browser);
      const second = await password(browser, page, user);
      assert.equal(second.stoppedAt, undefined, 'no code after the password');
      assert.ok(isAppCodePage(second), where(second));
      return { browser, req, page: second, uid: uidOf(second), pending: pendingOf(second, '/verify') };
    }

    it('is powerless by every route: no code, no session, no account page, no consent, no token', async () => {
      const user = await newUser({ totp: true });
      const half = await halfSignedIn(user);
      const { browser, uid } = half;
      const tab = () => withJar(server.url, browser.jar);

      // The app in the same browser, silently: nobody is signed in.
      assertErrorAtApp(await silent(tab()), 'login_required');
      // The account page sends the browser to sign in.
      const account = await tab().follow('/account');
      assert.ok(isPasswordPage(account), `the sign-in page, got ${where(account)}`);
      assert.doesNotMatch(account.body, /Signed in as/);
      // The consent step of this interaction is not reachable.
      const csrf = csrfOf(half.page.body);
      const confirm = await browser.request(`/interaction/${uid}/confirm`, { form: { csrf } });
      assert.equal(confirm.status, 400, 'confirm is the wrong step');
      assert.equal(confirm.headers.get('location'), null);
      // The password again: still the second step, never a code.
      const login = await browser.follow(`/interaction/${uid}`);
      assert.ok(isAppCodePage(login), `the interaction resumes at the second step, got ${where(login)}`);
      const again = await browser.request(`/interaction/${uid}/login`, { form: { csrf, email: user.email, password: user.password } });
      assert.equal(again.status, 303);
      assert.equal(new URL(again.headers.get('location')!, server.url).pathname, `/interaction/${uid}/verify`);
      // Nothing seen so far works as a code at the token endpoint.
      for (const fake of [uid, half.pending]) {
        const url = `${REDIRECT}?code=${fake}&state=${half.req.checks.expectedState}&iss=${encodeURIComponent(server.url)}`;
        await rejectsWith(rp.callback(url, half.req.checks), 'invalid_grant');
      }
      // Resuming the authorization without a finished sign-in starts over: the password, no code.
      const interaction = await server.server.services.database.knex('oidc_payloads').where({ kind: 'Interaction', id: uid }).first('payload');
      const returnTo = (interaction.payload as { returnTo: string }).returnTo;
      assert.equal(returnTo, `${server.url}/auth/${uid}`);
      const resumed = await tab().follow(returnTo);
      assert.equal(resumed.stoppedAt, undefined, `no code on resume, got ${where(resumed)}`);
      assert.ok(isPasswordPage(resumed), `a new sign-in from the start, got ${where(resumed)}`);
      assert.notEqual(uidOf(resumed), uid);
      // And still nobody is signed in.
      assertErrorAtApp(await silent(tab()), 'login_required');
    });

    it("refuses another interaction's pending step, and leaves it unspent for its own sign-in", async () => {
      const user = await newUser({ totp: true });
      const first = await halfSignedIn(user);
      const second = await halfSignedIn(user);
      const code = await user.code!();
      const crossed = await first.browser.request(`/interaction/${first.uid}/verify`, {
        form: { csrf: csrfOf(first.page.body), pending: second.pending, code },
      });
      assert.equal(crossed.status, 400, 'an unknown step for this interaction');
      assert.equal(crossed.headers.get('location'), null);
      assertErrorAtApp(await silent(withJar(server.url, first.browser.jar)), 'login_required');
      // The other sign-in's step was not taken: it still completes, with the same code (never checked above).
      const done = await second.browser.submit(second.page, '/verify', { code });
      const claims = await finish(second.browser, second.req, done);
      assert.equal(claims.acr, MFA);
    });

    it("cannot be continued with another user's pending step and code", async () => {
      const alice = await newUser({ totp: true });
      const mallory = await newUser({ totp: true });
      const victim = await halfSignedIn(alice);
      const attacker = await halfSignedIn(mallory);
      const aliceCode = await alice.code!();
      const csrf = csrfOf(attacker.page.body);
      const answer = await attacker.browser.follow(`/interaction/${attacker.uid}/verify`, { form: { csrf, pending: victim.pending, code: aliceCode } });
      assert.equal(answer.status, 400);
      assert.equal(answer.stoppedAt, undefined);
      assertErrorAtApp(await silent(withJar(server.url, attacker.browser.jar)), 'login_required');
      // Mallory's own step with Alice's code fails too.
      const wrong = await attacker.browser.follow(`/interaction/${attacker.uid}/verify`);
      const refused = await attacker.browser.submit(wrong, '/verify', { code: aliceCode });
      assert.equal(refused.stoppedAt, undefined);
      assert.equal(refused.status, 401);
      // Alice's sign-in still completes as Alice.
      const claims = await finish(victim.browser, victim.req, await victim.browser.submit(victim.page, '/verify', { code: aliceCode }));
      assert.equal(claims.sub, alice.id);
    });
  });

  describe('a user without a possession method asked for mfa', () => {
    it('is shown "Two-step verification needed" with a link to add a method, and going back gives unmet_authentication_requirements', async () => {
      const user = await newUser({ question: true });
      const browser = new CookieClient(server.url);
      const { page } = await open(browser, { acr_values: MFA, state: 'needs-mfa' });
      const answer = await password(browser, page, user);
      assert.equal(answer.stoppedAt, undefined);
      assert.ok(isEnrollPage(answer), where(answer));
      assert.ok(!isQuestionPage(answer), 'the question cannot give mfa, so it is not asked');
      assert.match(answer.body, /href="\/account\/security"/);
      const back = await browser.submit(answer, '/unmet');
      assertErrorAtApp(back, 'unmet_authentication_requirements');
      assert.equal(responseParams(back.stoppedAt).get('state'), 'needs-mfa');
      assertErrorAtApp(await silent(browser), 'login_required');
    });

    it('is led to the same page by a step-up from a password-and-question session', async () => {
      const user = await newUser({ question: true });
      const browser = new CookieClient(server.url);
      let { req, page } = await open(browser);
      page = await password(browser, page, user);
      assert.ok(isQuestionPage(page), where(page));
      const claims = await finish(browser, req, await browser.submit(page, '/verify', { answer: ANSWER }));
      assert.equal(claims.acr, ONE);
      ({ page } = await open(browser, { acr_values: MFA }));
      assert.ok(isEnrollPage(page), where(page));
      assertErrorAtApp(await browser.submit(page, '/unmet'), 'unmet_authentication_requirements');
      // The 1fa session is still there for what it is good for.
      const ok = await silent(browser);
      assert.ok(ok.stoppedAt && responseParams(ok.stoppedAt).get('code'));
    });
  });
});
