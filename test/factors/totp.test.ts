import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { codeAt } from '../../src/factors/totp.ts';
import { signInToAccount, sleep, type Credentials } from '../account/helpers.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  addTotp, awaitFreshStep, base32Decode, type Browsed, enrolQuestion, inFours, enrolTotp, failureCount, leftSecondStep, nowSeconds, pendingOf, recoveryCodesOn, throughToApp, totpCode,
} from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
const ALREADY_USED = /That code was already used\. Wait for the app to show the next one\./;
const WRONG = /That code is not right\./;
const THROTTLED = /Too many failed attempts\. Wait (?:1 second|(?!1 )\d+ seconds) and try again\./;

/** RFC 6238 appendix B, SHA-1: the seed is the ASCII string "12345678901234567890", codes have 8 digits. */
const RFC_SEED_ASCII = '12345678901234567890';
const RFC_SEED_BASE32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const RFC_VECTORS: [number, string][] = [
  [59, '94287082'], [1111111109, '07081804'], [1111111111, '14050471'],
  [1234567890, '89005924'], [2000000000, '69279037'], [20000000000, '65353130'],
];


/** A code of `digits` digits that no step from two before to two after now would accept. */
function wrongCode(key: Buffer, digits = 6): string {
  const t = nowSeconds();
  const near = new Set([-2, -1, 0, 1, 2].map((k) => totpCode(key, t + k * 30, digits)));
  for (;;) {
    const code = String(Math.floor(Math.random() * 10 ** digits)).padStart(digits, '0');
    if (!near.has(code)) return code;
  }
}

const passed = leftSecondStep;

/** A small world per server: users, an app that asks for mfa, the sign-in steps. */
function world(get: () => TestServer) {
  let users = 0;
  let rp: RelyingParty;
  const w = {
    async init() {
      rp = await RelyingParty.create(get().url, await get().addClient({ name: 'Bank', redirectUris: [REDIRECT] }));
    },
    get rp() {
      return rp;
    },
    store: () => get().server.services.store,
    knex: () => get().server.services.database.knex,
    /** A fresh user for each scenario, so that none depends on another. */
    async newUser(): Promise<Credentials & { id: string }> {
      const n = ++users;
      const credentials = { email: `totp${n}@example.com`, password: `totp user ${n} long password` };
      const user = await get().addUser(credentials);
      return { ...credentials, id: user.id };
    },
    /** A user with an authenticator app put straight into the store. */
    async userWithApp(digits = 6) {
      const user = await w.newUser();
      const app = await addTotp(w.store(), user.id, 'Phone', digits);
      return { user, ...app };
    },
    /** A fresh browser whose password was accepted, at the code page of the second step. */
    async atCodeStep(user: Credentials, params: Record<string, string> = { acr_values: MFA }) {
      const browser = new CookieClient(get().url);
      const req = await rp.authorization(params);
      const login = await browser.follow(req.url);
      assert.match(login.body, /\/login"/, 'the password page');
      const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(page.status, 200, `the second step, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
      assert.match(new URL(page.url).pathname, /^\/interaction\/[^/]+\/verify$/);
      assert.match(page.body, /name="code"/, 'asks for a code');
      return { browser, req, page };
    },
    submitCode: (browser: CookieClient, page: Page, code: string) => browser.submit(page, '/verify', { code }),
    /** Through consent to the app; the ID token's claims. */
    toApp: (browser: CookieClient, page: Browsed, checks: Parameters<RelyingParty['callback']>[1]) => throughToApp(browser, page, rp, checks),
    /** The account's shared failure counter (password and second step). */
    failures: (email: string) => failureCount(w.knex(), email),
    async events(userId: string, type: string): Promise<number> {
      const rows = await w.knex()('security_events').where({ user_id: userId, type }).select('id');
      return rows.length;
    },
    async wrongPassword(user: Credentials) {
      const browser = new CookieClient(get().url);
      const login = await browser.follow((await rp.authorization({ acr_values: MFA })).url);
      return browser.submit(login, '/login', { email: user.email, password: 'not the right password' });
    },
  };
  return w;
}

describe('authenticator apps (TOTP)', () => {
  let server: TestServer;
  const w = world(() => server);

  before(async () => {
    server = await startTestServer();
    await w.init();
  });
  after(() => server.stop());

  describe('codes', () => {
    it('computes the RFC 6238 SHA-1 test vectors, in the app code and in an independent implementation', async () => {
      assert.equal(base32Decode(RFC_SEED_BASE32).toString('ascii'), RFC_SEED_ASCII, 'the base32 seed is the RFC key');
      for (const [time, expected] of RFC_VECTORS) {
        assert.equal(await codeAt(RFC_SEED_BASE32, time, 8), expected, `codeAt at ${time}`);
        assert.equal(totpCode(Buffer.from(RFC_SEED_ASCII, 'ascii'), time, 8), expected, `independent totpCode at ${time}`);
      }
      // The 6-digit codes apps show are the last 6 digits of the same number.
      assert.equal(await codeAt(RFC_SEED_BASE32, 59, 6), '287082');
    });

    it('ships the documented defaults: 6 digits, the previous step accepted, no future step', () => {
      assert.deepEqual(loadConfig({ env: {} }).twoStep.totp, { digits: 6, pastSteps: 1, futureSteps: 0 });
      assert.deepEqual(server.config.twoStep.totp, { digits: 6, pastSteps: 1, futureSteps: 0 }, 'the test server runs the defaults');
    });
  });

  describe('enrolment on the account page', () => {
    /** A user signed in to the account page with a security question (every app needs one first). */
    async function withQuestion() {
      const user = await w.newUser();
      const browser = new CookieClient(server.url);
      await signInToAccount(browser, user);
      await enrolQuestion(browser);
      return { user, browser };
    }
    const apps = async (userId: string) => (await w.store().authenticators.listForUser(userId)).filter((a) => a.kind === 'totp');

    it('does not turn the app on for a wrong code: 400 with the reason, nothing stored, the same seed offered again', async () => {
      const { user, browser } = await withQuestion();
      const setup = await browser.follow('/account/two-step/totp');
      assert.equal(setup.status, 200);
      const seed = /id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)![1]!.replace(/ /g, '');
      assert.deepEqual(await apps(user.id), [], 'nothing exists while enrolling');

      const wrong = await browser.submit(setup, '/account/two-step/totp', { code: wrongCode(base32Decode(seed)), label: 'Phone' });
      assert.ok(wrong.status >= 400 && wrong.status < 500, `refused, got ${wrong.status}`);
      assert.match(wrong.body, /That code is not right\. Check that you scanned the code above/);
      assert.deepEqual(await apps(user.id), [], 'a wrong code stores nothing');
      const shape = await browser.submit(wrong, '/account/two-step/totp', { code: '12ab56', label: 'Phone' });
      assert.equal(shape.status, 400);
      assert.match(shape.body, /The code has 6 digits\./);
      assert.deepEqual(await apps(user.id), []);
      const security = await browser.follow('/account/security');
      assert.match(security.body, /id="add-totp"/, 'still offered as a method to add');
      assert.doesNotMatch(security.body, /name="label"[^>]*value="Phone"/, 'no app listed');

      // The same seed is offered again after the error; its right code turns it on.
      assert.equal(/id="totp-secret">([A-Z2-7 ]+)</.exec(shape.body)![1]!.replace(/ /g, ''), seed);
      await awaitFreshStep();
      const done = await browser.submit(shape, '/account/two-step/totp', { code: totpCode(base32Decode(seed), nowSeconds()), label: 'Phone' });
      assert.equal(done.status, 200);
      assert.equal((await apps(user.id)).length, 1);
    });

    it('shows a QR code and the seed while enrolling, keeps the label, seals the seed, spends the code and comes with recovery codes', async () => {
      const { user, browser } = await withQuestion();
      const setup = await browser.follow('/account/two-step/totp');
      const qr = /<img[^>]*id="totp-qr"[^>]*src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(setup.body);
      assert.ok(qr, 'a QR code image made on the server');
      assert.match(Buffer.from(qr[1]!, 'base64').toString('utf8'), /^<svg[\s\S]*<\/svg>\s*$/);
      const shown = /id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)![1]!.replace(/ /g, '');
      assert.match(shown, /^[A-Z2-7]{32}$/, 'a 160-bit seed in base32');
      assert.match(setup.body, /Time-based, SHA-1, 6 digits/);
      const pendingRows = await w.knex()('pending_steps').where({ user_id: user.id });
      assert.ok(pendingRows.length >= 1);
      assert.doesNotMatch(JSON.stringify(pendingRows), new RegExp(shown), 'the seed is sealed while the enrolment waits');

      const { seed, page, recoveryCodes } = await enrolTotp(browser, 'Work phone');
      assert.notEqual(seed, shown, 'every setup page makes a new seed');
      assert.equal(recoveryCodes.length, 10, 'the first possession method comes with recovery codes');
      assert.match(page.body, /Your Authenticator app was added\./, 'the notice names the method');

      const [app] = await apps(user.id);
      assert.ok(app);
      assert.equal(app.label, 'Work phone', 'the label is kept');
      assert.equal(app.secret, seed, 'the store opens the seed it sealed');
      const row = await w.knex()('authenticators').where({ id: app.id }).first();
      assert.ok(row.secret_sealed, 'a sealed seed is stored');
      assert.doesNotMatch(JSON.stringify(row), new RegExp(seed, 'i'), 'the seed is never stored in the clear');
      assert.doesNotMatch(JSON.stringify(row), new RegExp(base32Decode(seed).toString('hex'), 'i'));
      const security = await browser.follow('/account/security');
      assert.match(security.body, /<h3 id="method-totp-name">Authenticator app<\/h3>/);
      assert.match(security.body, /value="Work phone"/, 'listed under its label');
      assert.ok(!server.logText().includes(seed), 'the seed is not in the log');

      // The code that turned the app on is spent: at the next sign-in it is refused as already used.
      const { browser: other, page: codePage } = await w.atCodeStep(user);
      const replay = await w.submitCode(other, codePage, totpCode(base32Decode(seed), nowSeconds() - 1));
      assert.equal(replay.status, 401);
      assert.match(replay.body, ALREADY_USED);
    });
  });

  describe('signing in', () => {
    it('gives an app that asked for mfa acr mfa and amr pwd, otp, mfa', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, req, page } = await w.atCodeStep(user);
      assert.match(page.body, /Enter the 6-digit code from Phone/);
      await awaitFreshStep(5);
      const claims = await w.toApp(browser, await w.submitCode(browser, page, totpCode(key, nowSeconds())), req.checks);
      assert.equal(claims.acr, MFA);
      const amr = claims.amr as string[];
      assert.ok(Array.isArray(amr));
      assert.deepEqual(new Set(amr), new Set(['pwd', 'otp', 'mfa']));
      assert.equal(amr.length, 3, `exactly pwd, otp, mfa: ${amr.join(',')}`);
    });

    it('refuses a wrong code with 401 and the form again, on a new challenge; the old one is dead', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, req, page } = await w.atCodeStep(user);
      const wrong = await w.submitCode(browser, page, wrongCode(key));
      assert.equal(wrong.status, 401);
      assert.match(wrong.body, WRONG);
      assert.match(wrong.body, /role="alert"/);
      assert.equal(wrong.stoppedAt, undefined);
      assert.notEqual(pendingOf(wrong, '/verify'), pendingOf(page, '/verify'), 'a new challenge after a wrong answer');
      // The first challenge was taken when it was answered: the right code on it checks nothing.
      await awaitFreshStep(5);
      const stale = await w.submitCode(browser, page, totpCode(key, nowSeconds()));
      assert.equal(stale.status, 400);
      assert.match(stale.body, /That took too long or was already used/);
      assert.equal(passed(stale), false);
      // The new challenge still takes the right code.
      await w.toApp(browser, await w.submitCode(browser, wrong, totpCode(key, nowSeconds())), req.checks);
    });

    it('kills a challenge after 5 wrong codes: the methods page with 400, and the right code on it is refused', async () => {
      const { user, key } = await w.userWithApp();
      const start = await w.atCodeStep(user);
      const { browser } = start;
      let page: Browsed = start.page;
      for (let i = 1; i <= 4; i++) {
        page = await w.submitCode(browser, page, wrongCode(key));
        assert.equal(page.status, 401, `wrong code ${i}`);
      }
      const last = page;
      const dead = await w.submitCode(browser, last, wrongCode(key));
      assert.equal(dead.status, 400, 'the fifth wrong code ends the challenge');
      assert.match(dead.body, /Too many wrong answers for this request/);
      assert.match(dead.body, /id="methods"/);
      assert.doesNotMatch(dead.body, /name="code"/, 'no code form on a dead challenge');
      await awaitFreshStep(5);
      const right = await w.submitCode(browser, last, totpCode(key, nowSeconds()));
      assert.equal(right.status, 400, 'the right code on the dead challenge is not even checked');
      assert.equal(passed(right), false);
      assert.equal(await w.failures(user.email), 5, 'each wrong code counted once on the account');
    });
  });

  describe('the accepted window (default: the current and the previous step)', () => {
    it('refuses the code of two steps ago', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, page } = await w.atCodeStep(user);
      await awaitFreshStep(5);
      const old = await w.submitCode(browser, page, totpCode(key, nowSeconds() - 60));
      assert.equal(old.status, 401);
      assert.match(old.body, WRONG);
      assert.equal(passed(old), false);
    });

    it('refuses the code of the next step (a clock running ahead is not accepted by default)', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, page } = await w.atCodeStep(user);
      await awaitFreshStep(5);
      const ahead = await w.submitCode(browser, page, totpCode(key, nowSeconds() + 30));
      assert.equal(ahead.status, 401);
      assert.match(ahead.body, WRONG);
      assert.equal(passed(ahead), false);
    });

    it('reads a code typed in Arabic-Indic or Devanagari digits as the same code', async () => {
      for (const zero of [0x0660, 0x0966]) {
        const { user, key } = await w.userWithApp();
        const { browser, req, page } = await w.atCodeStep(user);
        await awaitFreshStep(5);
        const native = [...totpCode(key, nowSeconds())].map((d) => String.fromCodePoint(zero + Number(d))).join('');
        assert.doesNotMatch(native, /[0-9]/, 'no ASCII digit is sent');
        const claims = await w.toApp(browser, await w.submitCode(browser, page, native), req.checks);
        assert.equal(claims.acr, MFA);
      }
    });

    it('accepts the code of the previous step', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, req, page } = await w.atCodeStep(user);
      await awaitFreshStep(5);
      const claims = await w.toApp(browser, await w.submitCode(browser, page, totpCode(key, nowSeconds() - 30)), req.checks);
      assert.equal(claims.acr, MFA);
    });
  });

  describe('replay', () => {
    it('refuses a code accepted once when it is used again in the same step', async () => {
      const { user, key } = await w.userWithApp();
      await awaitFreshStep(10);
      const code = totpCode(key, nowSeconds());
      const first = await w.atCodeStep(user);
      await w.toApp(first.browser, await w.submitCode(first.browser, first.page, code), first.req.checks);
      const second = await w.atCodeStep(user);
      const again = await w.submitCode(second.browser, second.page, code);
      assert.equal(again.status, 401);
      assert.match(again.body, ALREADY_USED);
      assert.equal(passed(again), false, 'no sign-in from a replayed code');
      assert.equal(await w.failures(user.email), 1, 'a replayed code counts as a failure');
    });

    it('refuses a code of a step before the last accepted one, though it is still inside the window', async () => {
      const { user, key } = await w.userWithApp();
      await awaitFreshStep(10);
      const now = nowSeconds();
      // The previous step first, then the current one (newer: accepted), then the previous again (older: refused).
      const a = await w.atCodeStep(user);
      await w.toApp(a.browser, await w.submitCode(a.browser, a.page, totpCode(key, now - 30)), a.req.checks);
      const b = await w.atCodeStep(user);
      await w.toApp(b.browser, await w.submitCode(b.browser, b.page, totpCode(key, now)), b.req.checks);
      const c = await w.atCodeStep(user);
      const older = await w.submitCode(c.browser, c.page, totpCode(key, now - 30));
      assert.equal(older.status, 401);
      assert.match(older.body, ALREADY_USED);
      assert.equal(passed(older), false);
      const row = await w.knex()('authenticators').where({ user_id: user.id, kind: 'totp' }).first('last_step');
      assert.equal(Number(row.last_step), Math.floor(now / 30), 'the last accepted step stays the newest one');
    });

    it('gives exactly one success for 20 parallel submissions of one code from 20 sign-ins', async () => {
      const { user, key } = await w.userWithApp();
      const signIns = await inFours(20, () => w.atCodeStep(user));
      await awaitFreshStep(8);
      const code = totpCode(key, nowSeconds());
      const answers = await Promise.all(signIns.map((s) => w.submitCode(s.browser, s.page, code)));
      const winners = answers.filter(passed);
      assert.equal(winners.length, 1, `exactly one success, got ${answers.map((a) => a.status).join(',')}`);
      for (const a of answers.filter((x) => !passed(x))) {
        assert.ok(a.status === 401 || a.status === 429, `refused, got ${a.status}`);
        if (a.status === 401) assert.match(a.body, ALREADY_USED);
      }
      assert.equal(await w.events(user.id, 'two_step.verified'), 1, 'one verified second step');
    });

    it('lets exactly one of 20 parallel submissions of the same form from one browser reach the app', async () => {
      const { user, key } = await w.userWithApp();
      const { browser, req, page } = await w.atCodeStep(user);
      const form = findForm(page.body, '/verify');
      const action = new URL(form.action, page.url).toString();
      await awaitFreshStep(8);
      const code = totpCode(key, nowSeconds());
      const answers = await Promise.all(Array.from({ length: 20 }, () => browser.follow(action, { form: { ...form.hidden, code } })));
      const winners = answers.filter(passed);
      assert.equal(winners.length, 1, `exactly one went on, got ${answers.map((a) => a.status).join(',')}`);
      for (const a of answers.filter((x) => !passed(x))) assert.ok(a.status >= 400, `refused, got ${a.status} at ${a.url}`);
      await w.toApp(browser, winners[0]!, req.checks);
      assert.equal(await w.events(user.id, 'two_step.verified'), 1, 'the challenge was checked once');
      assert.equal(await w.events(user.id, 'sign_in.succeeded'), 1, 'one sign-in');
      assert.equal(await w.events(user.id, 'two_step.failed'), 0, 'the others were never checked, so nothing failed');
    });
  });

  describe('throttling on the shared failure counter', () => {
    it('counts wrong codes with wrong passwords, then refuses even the right code and the right password (429)', async () => {
      const { user, key } = await w.userWithApp();
      for (let i = 0; i < 3; i++) assert.equal((await w.wrongPassword(user)).status, 401);
      assert.equal(await w.failures(user.email), 3);
      const { browser, page: codePage } = await w.atCodeStep(user);
      assert.equal(await w.failures(user.email), 3, 'the right password does not reset the counter');
      let page: Browsed = await w.submitCode(browser, codePage, wrongCode(key));
      assert.equal(page.status, 401);
      page = await w.submitCode(browser, page, wrongCode(key));
      assert.equal(page.status, 401);
      assert.equal(await w.failures(user.email), 5, 'wrong codes count on the same counter as wrong passwords');
      // The 6th failure, once the 1-second delay has passed, makes the next wait 2 seconds.
      await sleep(1100);
      page = await w.submitCode(browser, page, wrongCode(key));
      assert.equal(page.status, 401);
      assert.equal(await w.failures(user.email), 6);

      const right = await w.submitCode(browser, page, totpCode(key, nowSeconds()));
      assert.equal(right.status, 429, 'the right code is refused while the account waits');
      assert.match(right.body, THROTTLED);
      assert.ok(Number(right.headers.get('retry-after')) >= 1);
      assert.equal(passed(right), false);
      const password = new CookieClient(server.url);
      const login = await password.follow((await w.rp.authorization({ acr_values: MFA })).url);
      const refused = await password.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(refused.status, 429, 'and so is the right password');
      assert.match(refused.body, THROTTLED);
      assert.equal(await w.failures(user.email), 6, 'refusals while waiting are not counted');
    });

    it('does not reset the counter on a right password: password right and code wrong, again and again, keeps it growing', async () => {
      const { user, key } = await w.userWithApp();
      for (let round = 1; round <= 4; round++) {
        const { browser, page } = await w.atCodeStep(user);
        assert.equal(await w.failures(user.email), round - 1, `round ${round}: the right password kept the count`);
        const wrong = await w.submitCode(browser, page, wrongCode(key));
        assert.equal(wrong.status, 401);
        assert.equal(await w.failures(user.email), round);
      }
    });
  });
});

describe('authenticator apps (TOTP) on a server that accepts one step ahead (twoStep.totp.futureSteps 1)', () => {
  let server: TestServer;
  const w = world(() => server);
  before(async () => {
    server = await startTestServer({ config: { twoStep: { totp: { futureSteps: 1 } } } });
    await w.init();
  });
  after(() => server.stop());

  it('accepts the next step\'s code, but not the one after it', async () => {
    assert.equal(server.config.twoStep.totp.futureSteps, 1);
    const { user, key } = await w.userWithApp();
    const refused = await w.atCodeStep(user);
    await awaitFreshStep(5);
    const tooFar = await w.submitCode(refused.browser, refused.page, totpCode(key, nowSeconds() + 60));
    assert.equal(tooFar.status, 401);
    assert.match(tooFar.body, WRONG);
    const { browser, req, page } = await w.atCodeStep(user);
    const claims = await w.toApp(browser, await w.submitCode(browser, page, totpCode(key, nowSeconds() + 30)), req.checks);
    assert.equal(claims.acr, MFA);
  });
});

describe('authenticator apps (TOTP) with 8-digit codes (twoStep.totp.digits 8)', () => {
  let server: TestServer;
  const w = world(() => server);
  before(async () => {
    server = await startTestServer({ config: { twoStep: { totp: { digits: 8 } } } });
    await w.init();
  });
  after(() => server.stop());

  it('enrols an app with 8-digit codes: a 6-digit code is refused, an 8-digit one turns it on', async () => {
    const user = await w.newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    await enrolQuestion(browser);
    const setup = await browser.follow('/account/two-step/totp');
    assert.match(setup.body, /Time-based, SHA-1, 8 digits/);
    assert.match(setup.body, /Enter the 8-digit code the app shows/);
    const key = base32Decode(/id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)![1]!.replace(/ /g, ''));
    await awaitFreshStep();
    const six = await browser.submit(setup, '/account/two-step/totp', { code: totpCode(key, nowSeconds(), 6), label: 'Token' });
    assert.equal(six.status, 400);
    assert.match(six.body, /The code has 8 digits\./);
    const done = await browser.submit(six, '/account/two-step/totp', { code: totpCode(key, nowSeconds(), 8), label: 'Token' });
    assert.equal(done.status, 200, done.body.slice(0, 300));
    assert.equal(recoveryCodesOn(done).length, 10);
    const [app] = (await w.store().authenticators.listForUser(user.id)).filter((a) => a.kind === 'totp');
    assert.equal(app?.data.digits, 8, 'the app keeps the digits it was enrolled with');
  });

  it('signs in with an 8-digit code', async () => {
    const { user, key } = await w.userWithApp(8);
    const { browser, req, page } = await w.atCodeStep(user);
    assert.match(page.body, /Enter the 8-digit code from Phone/);
    await awaitFreshStep(5);
    const six = await w.submitCode(browser, page, totpCode(key, nowSeconds(), 6));
    assert.equal(six.status, 400, 'a 6-digit code is not even a guess');
    assert.match(six.body, /The code has 8 digits\./);
    const claims = await w.toApp(browser, await w.submitCode(browser, six, totpCode(key, nowSeconds(), 8)), req.checks);
    assert.equal(claims.acr, MFA);
  });
});

describe('authenticator apps (TOTP) and the log at debug level', () => {
  let server: TestServer;
  const w = world(() => server);
  before(async () => {
    server = await startTestServer({ logLevel: 'debug' });
    await w.init();
  });
  after(() => server.stop());

  /** `secret` appears nowhere in the log, also not inside a longer run of digits or letters. */
  function assertNotLogged(secret: string, what: string) {
    const log = server.logText();
    const found = new RegExp(`(?<![0-9A-Za-z])${secret}(?![0-9A-Za-z])`, 'i').test(log) || log.includes(secret);
    assert.equal(found, false, `${what} (${secret}) is not in the log`);
  }

  it('writes no seed and no code to the log while enrolling and signing in', async () => {
    const user = await w.newUser();
    const account = new CookieClient(server.url);
    await signInToAccount(account, user);
    await enrolQuestion(account);
    const setup = await account.follow('/account/two-step/totp');
    const firstSeed = /id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)![1]!;
    const wrongSetup = wrongCode(base32Decode(firstSeed.replace(/ /g, '')));
    await account.submit(setup, '/account/two-step/totp', { code: wrongSetup, label: 'Phone' });
    await awaitFreshStep();
    const enrolled = await enrolTotp(account, 'Phone');
    const enrolCode = totpCode(base32Decode(enrolled.seed), nowSeconds());

    const other = await w.userWithApp();
    const { browser, req, page } = await w.atCodeStep(other.user);
    const wrong = wrongCode(other.key);
    const refused = await w.submitCode(browser, page, wrong);
    assert.equal(refused.status, 401);
    await awaitFreshStep(5);
    const right = totpCode(other.key, nowSeconds());
    await w.toApp(browser, await w.submitCode(browser, refused, right), req.checks);

    const log = server.logText();
    assert.match(log, /"level":20,.*"path":"\/interaction\/[^"]+\/verify"/, 'the log is at debug level and has the requests in it');
    for (const seed of [firstSeed.replace(/ /g, ''), enrolled.seed, other.seed]) {
      assertNotLogged(seed, 'a seed');
      assertNotLogged(seed.match(/.{4}/g)!.join(' '), 'a seed as shown');
      assertNotLogged(base32Decode(seed).toString('hex'), 'a seed in hex');
      assertNotLogged(encodeURIComponent(seed), 'a seed in a URI');
    }
    assertNotLogged(wrongSetup, 'a wrong code at enrolment');
    assertNotLogged(enrolCode, 'the code that turned the app on');
    assertNotLogged(wrong, 'a wrong code');
    assertNotLogged(right, 'the right code');
    for (const code of enrolled.recoveryCodes) assertNotLogged(code, 'a recovery code');
  });
});
