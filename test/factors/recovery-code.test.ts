import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formFields, post, signInToAccount, sleep, type Credentials } from '../account/helpers.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  addQuestion, addRecoveryCodes, addTotp, awaitFreshStep, type Browsed, inFours, enrolQuestion, enrolTotp, failureCount, leftSecondStep, nowSeconds, recoveryCodesOn, throughToApp, totpCode,
} from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
/** 16 characters from the 32-letter alphabet without I, O, 0 and 1, in groups of four. */
const CODE_SHAPE = /^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$/;
const WRONG = /That recovery code is not right, or it was already used\./;
const THROTTLED = /Too many failed attempts\. Wait (?:1 second|(?!1 )\d+ seconds) and try again\./;


const passed = leftSecondStep;

describe('recovery codes', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Bank', redirectUris: [REDIRECT] }));
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  const store = () => server.server.services.store;
  const knex = () => server.server.services.database.knex;
  const codesLeft = (userId: string) => store().codes.countLive('recovery_code', userId);

  const newUser = () => server.newUser('recovery');

  /** A user with a security question, an authenticator app and a set of recovery codes, put straight into the store. */
  async function userWithCodes() {
    const user = await newUser();
    await addQuestion(store(), (s) => server.server.services.hasher.hash(s), user.id);
    const app = await addTotp(store(), user.id);
    const codes = await addRecoveryCodes(store(), user.id);
    return { user, key: app.key, codes };
  }

  const failures = (email: string) => failureCount(knex(), email);

  /** A fresh browser asked for mfa: password accepted, then "Try another way", then "Use a recovery code". */
  async function atRecoveryStep(user: Credentials, browser = new CookieClient(server.url), params: Record<string, string> = {}) {
    const req = await rp.authorization({ acr_values: MFA, ...params });
    const login = await browser.follow(req.url);
    const first = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(first.status, 200, `the second step, got ${first.status} at ${first.url}`);
    assert.match(first.body, /Enter the 6-digit code from/, 'the app is offered first; recovery codes are a last resort');
    const another = /href="(\/interaction\/[^"]+\/verify\/methods)">Try another way</.exec(first.body)?.[1];
    assert.ok(another, '"Try another way" is offered');
    const methods = await browser.follow(another);
    assert.equal(methods.status, 200);
    const link = /href="([^"]+\/verify\?method=[^"]+)">Use a recovery code</.exec(methods.body)?.[1];
    assert.ok(link, 'recovery codes are in the list');
    const page = await browser.follow(link.replaceAll('&amp;', '&'));
    assert.equal(page.status, 200);
    assert.match(page.body, /Enter one of your recovery codes/);
    return { browser, req, page };
  }

  const submitCode = (browser: CookieClient, page: Page, code: string) => browser.submit(page, '/verify', { code });

  const toApp = (browser: CookieClient, page: Browsed, checks: Parameters<RelyingParty['callback']>[1]) => throughToApp(browser, page, rp, checks);

  /** Signs in to the account page with the password and the authenticator app (a new device is asked for a second step). */
  async function signInToAccountWithApp(browser: CookieClient, user: Credentials, key: Buffer) {
    const login = await browser.follow('/account');
    const step = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.match(new URL(step.url).pathname, /\/verify$/, 'a new device is asked for a second step');
    // The question is offered first (a risky sign-in needs any second step); the app gives the account page mfa.
    const another = /href="(\/interaction\/[^"]+\/verify\/methods)">Try another way</.exec(step.body)?.[1];
    assert.ok(another);
    const appLink = /href="([^"]+\/verify\?method=[^"]+)">Use your authenticator app/.exec((await browser.follow(another)).body)?.[1];
    assert.ok(appLink);
    const codePage = await browser.follow(appLink.replaceAll('&amp;', '&'));
    assert.match(codePage.body, /Enter the 6-digit code from/);
    await awaitFreshStep(5);
    const page = await browser.submit(codePage, '/verify', { code: totpCode(key, nowSeconds()) });
    assert.equal(page.status, 200, `${page.url}: ${page.body.slice(0, 300)}`);
    assert.equal(new URL(page.url).pathname, '/account');
    return page;
  }

  describe('the set', () => {
    it('comes with the first authenticator app: 10 codes of 16 characters, shown once, stored only as hashes', async () => {
      const user = await newUser();
      const browser = new CookieClient(server.url);
      await signInToAccount(browser, user);
      await enrolQuestion(browser);
      const { page, recoveryCodes } = await enrolTotp(browser, 'Phone');
      assert.equal(recoveryCodes.length, 10);
      for (const code of recoveryCodes) assert.match(code, CODE_SHAPE);
      assert.equal(new Set(recoveryCodes).size, 10, 'all different');
      assert.match(page.body, /You won(?:'|&#39;)t be shown them again/);
      const download = /href="data:text\/plain;charset=utf-8,([^"]+)"[^>]*download=/.exec(page.body)?.[1];
      assert.ok(download, 'offered as a download');
      assert.ok(recoveryCodes.every((c) => decodeURIComponent(download).includes(c)));

      // Never shown again.
      const security = await browser.follow('/account/security');
      assert.equal(security.status, 200);
      assert.match(security.body, /10 of 10 codes left\./);
      assert.deepEqual(recoveryCodesOn(security), []);
      for (const code of recoveryCodes) {
        assert.ok(!security.body.includes(code) && !security.body.includes(code.replace(/-/g, '')), 'the security page never shows a code');
      }

      // Only hashes in the database; nothing in the log.
      const rows = await knex()('one_time_codes').where({ user_id: user.id, purpose: 'recovery_code' });
      assert.equal(rows.length, 10);
      const dump = JSON.stringify(rows) + JSON.stringify(await knex()('authenticators').where({ user_id: user.id }))
        + JSON.stringify(await knex()('pending_steps').where({ user_id: user.id }));
      const log = server.logText();
      for (const code of recoveryCodes) {
        for (const form of [code, code.replace(/-/g, ''), code.toLowerCase(), code.replace(/-/g, '').toLowerCase()]) {
          assert.ok(!dump.includes(form), `the database does not hold ${form}`);
          assert.ok(!log.includes(form), `the log does not hold ${form}`);
        }
      }
      assert.equal(await codesLeft(user.id), 10);
    });
  });

  describe('signing in with a recovery code', () => {
    it('refuses an empty or malformed code with 400 and the reason, without counting it as a guess', async () => {
      const { user } = await userWithCodes();
      const { browser, page } = await atRecoveryStep(user);
      const empty = await submitCode(browser, page, '   ');
      assert.equal(empty.status, 400);
      assert.match(empty.body, /Enter a recovery code\./);
      let last: Browsed = empty;
      for (const malformed of ['ABCD-EFGH', 'ABCD-EFGH-IJKL-MNOP', 'ABCD-EFGH-JKMN-PQR0', 'ABCD-EFGH-JKMN-PQRS-TUVW']) {
        const refused = await submitCode(browser, last, malformed);
        last = refused;
        assert.equal(refused.status, 400, malformed);
        assert.match(refused.body, /A recovery code has 16 letters and digits, like ABCD-EFGH-JKMN-PQRS\./);
        assert.equal(passed(refused), false);
      }
      assert.equal(await failures(user.email), 0, 'a code that cannot be right is not a guess');
      assert.equal(await codesLeft(user.id), 10);
    });

    it('refuses a well-formed wrong code with 401 and counts it on the account', async () => {
      const { user } = await userWithCodes();
      const { browser, page } = await atRecoveryStep(user);
      const wrong = await submitCode(browser, page, 'ABCD-EFGH-JKMN-PQRS');
      assert.equal(wrong.status, 401);
      assert.match(wrong.body, WRONG);
      assert.match(wrong.body, /Enter one of your recovery codes/, 'the form again');
      assert.equal(await failures(user.email), 1);
      assert.equal(await codesLeft(user.id), 10);
    });

    it('signs in at mfa with amr otp and mfa, spends the code (9 left, said on the page) and refuses it the second time', async () => {
      const { user, codes } = await userWithCodes();
      const { browser, req, page } = await atRecoveryStep(user);
      const notice = await submitCode(browser, page, codes[0]!);
      assert.equal(notice.stoppedAt, undefined, 'not at the app before the notice');
      assert.match(notice.body, /id="recovery-left">You have 9 recovery codes left\./);
      assert.doesNotMatch(notice.body, /Make new recovery codes/, 'nine is not few');
      // A reload shows the same notice; the sign-in is granted only by "Continue".
      const reloaded = await browser.follow(notice.url);
      assert.match(reloaded.body, /You have 9 recovery codes left\./);
      const claims = await toApp(browser, notice, req.checks);
      assert.equal(claims.acr, MFA);
      const amr = (claims.amr ?? []) as string[];
      for (const value of ['pwd', 'otp', 'mfa']) assert.ok(amr.includes(value), `amr has ${value}: ${amr.join(',')}`);
      assert.equal(await codesLeft(user.id), 9);

      const again = await atRecoveryStep(user);
      const replay = await submitCode(again.browser, again.page, codes[0]!);
      assert.equal(replay.status, 401);
      assert.match(replay.body, WRONG);
      assert.equal(passed(replay), false);
      assert.equal(await codesLeft(user.id), 9);
    });

    it('mails the owner when a code is used, on a known device too: how many are left and a "This wasn\'t me" link that signs out everywhere', async () => {
      const { user, key, codes } = await userWithCodes();
      // The browser becomes a known device by a sign-in with the authenticator app.
      const browser = new CookieClient(server.url);
      await awaitFreshStep();
      const first = await rp.authorization({ acr_values: MFA });
      const login = await browser.follow(first.url);
      const step = await browser.submit(login, '/login', { email: user.email, password: user.password });
      await toApp(browser, await browser.submit(step, '/verify', { code: totpCode(key, nowSeconds()) }), first.checks);
      const since = mailbox.messages.length;
      const { req, page } = await atRecoveryStep(user, browser, { prompt: 'login' });
      await toApp(browser, await submitCode(browser, page, codes[5]!), req.checks);
      const mail = await mailbox.next(user.email, { since });
      assert.equal(mail.subject, 'A recovery code was used to sign in to your Latchkey account');
      assert.match(mail.text, /A recovery code was used to sign in to your account from .+, near .+, at /);
      assert.match(mail.text, /You have 9 recovery codes left\./);
      const link = /https?:\/\/\S+\/not-me\?token=[A-Za-z0-9_-]+/.exec(mail.text)?.[0];
      assert.ok(link, mail.text);
      const event = (await store().events.forUser(user.id)).find((e) => e.type === 'recovery_code.used');
      assert.equal(event?.details.left, 9);
      const activity = await browser.follow('/account/activity');
      assert.match(activity.body, /Signed in with a recovery code/);

      const reader = new CookieClient(server.url);
      const done = await reader.submit(await reader.follow(link), '/not-me');
      assert.equal(done.status, 200);
      assert.match(done.body, /Your account was signed out everywhere/);
      assert.notEqual((await browser.request('/account/activity')).status, 200, 'the browser that used the code is signed out');
    });

    it('says when few are left, with where to make new ones, and when the last one was used', async () => {
      const user = await newUser();
      await addQuestion(store(), (s) => server.server.services.hasher.hash(s), user.id);
      await addTotp(store(), user.id);
      const codes = await addRecoveryCodes(store(), user.id, 2);
      const first = await atRecoveryStep(user);
      const few = await submitCode(first.browser, first.page, codes[0]!);
      assert.match(few.body, /You have 1 recovery code left\./);
      assert.match(few.body, /Make new recovery codes[^<]*<a href="\/account\/security">/);
      await toApp(first.browser, few, first.req.checks);
      const last = await atRecoveryStep(user);
      const none = await submitCode(last.browser, last.page, codes[1]!);
      assert.match(none.body, /That was your last recovery code\./);
      await toApp(last.browser, none, last.req.checks);
    });

    it('accepts a code typed in lower case, or without dashes', async () => {
      const { user, codes } = await userWithCodes();
      const lower = await atRecoveryStep(user);
      await toApp(lower.browser, await submitCode(lower.browser, lower.page, codes[1]!.toLowerCase()), lower.req.checks);
      const bare = await atRecoveryStep(user);
      await toApp(bare.browser, await submitCode(bare.browser, bare.page, ` ${codes[2]!.replace(/-/g, '')} `), bare.req.checks);
      const spaced = await atRecoveryStep(user);
      await toApp(spaced.browser, await submitCode(spaced.browser, spaced.page, codes[3]!.toLowerCase().replace(/-/g, ' ')), spaced.req.checks);
      assert.equal(await codesLeft(user.id), 7);
    });

    it('gives exactly one success for 20 parallel uses of one code from 20 sign-ins', async () => {
      const { user, codes } = await userWithCodes();
      const signIns = await inFours(20, () => atRecoveryStep(user));
      const answers = await Promise.all(signIns.map((s) => submitCode(s.browser, s.page, codes[4]!)));
      const winners = answers.filter(passed);
      assert.equal(winners.length, 1, `exactly one success, got ${answers.map((a) => a.status).join(',')}`);
      for (const a of answers.filter((x) => !passed(x))) assert.ok(a.status === 401 || a.status === 429, `refused, got ${a.status}`);
      assert.equal(await codesLeft(user.id), 9, 'one code spent, once');
    });
  });

  describe('throttling on the shared failure counter', () => {
    it('counts wrong recovery codes with wrong passwords, and then refuses the right code (429) without spending it', async () => {
      const { user, codes } = await userWithCodes();
      for (let i = 0; i < 3; i++) {
        const browser = new CookieClient(server.url);
        const login = await browser.follow((await rp.authorization({ acr_values: MFA })).url);
        assert.equal((await browser.submit(login, '/login', { email: user.email, password: 'not the password at all' })).status, 401);
      }
      const { browser, req, page: first } = await atRecoveryStep(user);
      assert.equal(await failures(user.email), 3, 'the right password did not reset the counter');
      let page: Browsed = await submitCode(browser, first, 'ABCD-EFGH-JKMN-PQRS');
      assert.equal(page.status, 401);
      page = await submitCode(browser, page, 'BCDE-FGHJ-KMNP-QRST');
      assert.equal(page.status, 401);
      assert.equal(await failures(user.email), 5, 'wrong codes count on the same counter as wrong passwords');
      await sleep(1100);
      page = await submitCode(browser, page, 'CDEF-GHJK-MNPQ-RSTU');
      assert.equal(page.status, 401, 'the 6th failure, after the first delay');

      const refused = await submitCode(browser, page, codes[0]!);
      assert.equal(refused.status, 429, 'the right code is refused while the account waits');
      assert.match(refused.body, THROTTLED);
      assert.equal(passed(refused), false);
      assert.equal(await codesLeft(user.id), 10, 'a refused code is not spent');
      const password = new CookieClient(server.url);
      const login = await password.follow((await rp.authorization({ acr_values: MFA })).url);
      const pwRefused = await password.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(pwRefused.status, 429, 'so is the right password');

      // Once the wait is over the owner gets in with the same code, and the counter starts again.
      await sleep(Number(refused.headers.get('retry-after')) * 1000 + 200);
      await toApp(browser, await submitCode(browser, refused, codes[0]!), req.checks);
      assert.equal(await codesLeft(user.id), 9);
      assert.equal(await failures(user.email), 0, 'a completed sign-in clears the counter');
    });
  });

  describe('new codes on the account page', () => {
    it('refuses a foreign Origin or a missing CSRF token, and keeps the old set', async () => {
      const { user, key, codes } = await userWithCodes();
      const browser = new CookieClient(server.url);
      await signInToAccountWithApp(browser, user, key);
      const page = await browser.follow('/account/two-step/recovery-code');
      assert.equal(page.status, 200);
      const hidden = formFields(page, '/account/two-step/recovery-code');
      const foreign = await browser.request('/account/two-step/recovery-code', { form: hidden, headers: { origin: 'https://evil.example' } });
      assert.equal(foreign.status, 403);
      const missing = await browser.request('/account/two-step/recovery-code', { form: {} });
      assert.equal(missing.status, 403);
      assert.deepEqual(recoveryCodesOn(foreign).concat(recoveryCodesOn(missing)), []);
      assert.equal(await codesLeft(user.id), 10);
      assert.ok(await store().codes.spendOfUser('recovery_code', user.id, codes[9]!.replace(/-/g, '')), 'an old code still works');
    });

    it('makes a new set that kills the old one, and mails the user', async () => {
      const { user, key, codes } = await userWithCodes();
      // One code used: the page counts what is left.
      const used = await atRecoveryStep(user);
      const before = mailbox.messages.length;
      await toApp(used.browser, await submitCode(used.browser, used.page, codes[0]!), used.req.checks);
      // Its own mail goes out in the background: wait for it, so that it is not taken for the one below.
      assert.match((await mailbox.next(user.email, { since: before })).subject, /A recovery code was used/);

      const browser = new CookieClient(server.url);
      await signInToAccountWithApp(browser, user, key);
      const security = await browser.follow('/account/security');
      assert.match(security.body, /9 of 10 codes left\./);
      const page = await browser.follow('/account/two-step/recovery-code');
      assert.equal(page.status, 200);
      assert.match(page.body, /You have 9 unused codes\. Getting new ones makes them stop working\./);
      assert.deepEqual(recoveryCodesOn(page), [], 'the old codes are not shown again');

      const mails = mailbox.messages.length;
      const fresh = await post(browser, page, '/account/two-step/recovery-code');
      assert.equal(fresh.status, 200);
      const newCodes = recoveryCodesOn(fresh);
      assert.equal(newCodes.length, 10);
      assert.equal(newCodes.filter((c) => codes.includes(c)).length, 0, 'all new');
      assert.equal(await codesLeft(user.id), 10);
      const mail = await mailbox.next(user.email, { since: mails });
      assert.match(mail.subject, /two-step verification was changed/);
      assert.match(mail.text, /New recovery codes were made; the old ones no longer work\./);
      for (const code of newCodes) assert.ok(!mail.raw.includes(code) && !mail.raw.includes(code.replace(/-/g, '')), 'the mail carries no code');
      assert.match((await browser.follow('/account/security')).body, /10 of 10 codes left\./);

      // An old code fails; a new one works.
      const old = await atRecoveryStep(user);
      const refused = await submitCode(old.browser, old.page, codes[1]!);
      assert.equal(refused.status, 401);
      assert.match(refused.body, WRONG);
      const ok = await atRecoveryStep(user);
      const claims = await toApp(ok.browser, await submitCode(ok.browser, ok.page, newCodes[0]!), ok.req.checks);
      assert.equal(claims.acr, MFA);
      assert.equal(await codesLeft(user.id), 9);
    });
  });
});
