import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formFields, sleep, signInToAccount, type Credentials } from '../account/helpers.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { responseParams } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  addQuestion, addTotp, awaitFreshStep, type Browsed, failureCount, leftSecondStep, nowSeconds, pendingOf, throughToApp, totpCode,
} from '../helpers/two-step.ts';

const ONE = 'urn:latchkey:acr:1fa';
const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
const NEW_DEVICE = /We don(?:'|&#39;)t recognise this device\./;
const WRONG = /That answer is not right\./;
const THROTTLED = /Too many failed attempts\. Wait (?:1 second|(?!1 )\d+ seconds) and try again\./;
const QUESTION_PAGE = '/account/two-step/security-question';


/** A small world per server: users, an app, the sign-in steps. */
function world(get: () => TestServer) {
  let users = 0;
  let rp: RelyingParty;
  let strictRp: RelyingParty;
  const w = {
    async init() {
      rp = await RelyingParty.create(get().url, await get().addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
      strictRp = await RelyingParty.create(get().url, await get().addClient({ name: 'Bank', redirectUris: [REDIRECT], minimumAcr: MFA }));
    },
    get rp() {
      return rp;
    },
    get strictRp() {
      return strictRp;
    },
    store: () => get().server.services.store,
    knex: () => get().server.services.database.knex,
    hash: (s: string) => get().server.services.hasher.hash(s),
    async newUser(): Promise<Credentials & { id: string }> {
      const n = ++users;
      const credentials = { email: `question${n}@example.com`, password: `question user ${n} password` };
      const user = await get().addUser(credentials);
      return { ...credentials, id: user.id };
    },
    /** A user whose only second step is a security question (answer "rex the dog"), put straight into the store. */
    async userWithQuestion() {
      const user = await w.newUser();
      const { id } = await addQuestion(w.store(), w.hash, user.id);
      return { user, questionId: id };
    },
    async questions(userId: string) {
      return (await w.store().authenticators.listForUser(userId)).filter((a) => a.kind === 'security-question');
    },
    /** A fresh browser (a new device) through the password page; the page after it. */
    async afterPassword(user: Credentials, params: Record<string, string> = {}, browser = new CookieClient(get().url), party = rp) {
      const req = await party.authorization(params);
      const login = await browser.follow(req.url);
      assert.match(login.body, /\/login"/, 'the password page');
      const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
      return { browser, req, page };
    },
    /** As afterPassword, and asserts the page asks the security question. */
    async atQuestion(user: Credentials, params: Record<string, string> = {}) {
      const s = await w.afterPassword(user, params);
      assert.equal(s.page.status, 200, `the second step, got ${s.page.status} at ${s.page.url}: ${s.page.body.slice(0, 300)}`);
      assert.match(new URL(s.page.url).pathname, /^\/interaction\/[^/]+\/verify$/);
      assert.match(s.page.body, /name="answer"/, 'asks the security question');
      return s;
    },
    answer: (browser: CookieClient, page: Page, answer: string) => browser.submit(page, '/verify', { answer }),
    toApp: (browser: CookieClient, page: Browsed, checks: Parameters<RelyingParty['callback']>[1], party = rp) => throughToApp(browser, page, party, checks),
    failures: (email: string) => failureCount(w.knex(), email),
    async wrongPassword(user: Credentials) {
      const { page } = await w.afterPassword({ email: user.email, password: 'not the right password' });
      return page;
    },
  };
  return w;
}

const passed = leftSecondStep;

describe('the security question', () => {
  let server: TestServer;
  const w = world(() => server);

  before(async () => {
    server = await startTestServer();
    await w.init();
  });
  after(() => server.stop());

  /** A new user signed in to the account page (no second step yet, so none is asked). */
  async function onAccountPage() {
    const user = await w.newUser();
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    return { user, browser };
  }

  describe('setting it up on the account page', () => {
    it('refuses a too short answer, no question, and a too short own question, with the reason and nothing stored', async () => {
      const { user, browser } = await onAccountPage();
      let page: Browsed = await browser.follow(QUESTION_PAGE);
      assert.equal(page.status, 200);
      const cases: [Record<string, string>, RegExp][] = [
        [{ question: 'firstPet', answer: 'ab' }, /Your answer must have at least 3 characters\./],
        [{ question: 'firstPet', answer: '   aB \t ' }, /Your answer must have at least 3 characters\./],
        [{ question: 'firstPet', answer: '' }, /Your answer must have at least 3 characters\./],
        [{ question: 'firstPet', answer: 'x'.repeat(201) }, /Your answer can have at most 200 characters\./],
        [{ question: '', answer: 'zebra crossing 42' }, /Choose a question\./],
        [{ question: 'favouriteColour', answer: 'zebra crossing 42' }, /Choose a question\./],
        [{ question: 'custom', customQuestion: 'Why', answer: 'zebra crossing 42' }, /Write a question of at least 5 characters\./],
        [{ question: 'custom', customQuestion: '  ', answer: 'zebra crossing 42' }, /Write a question of at least 5 characters\./],
      ];
      for (const [fields, message] of cases) {
        page = await browser.submit(page, QUESTION_PAGE, fields);
        assert.equal(page.status, 400, JSON.stringify(fields));
        assert.match(page.body, message, JSON.stringify(fields));
        assert.ok(!page.body.includes('zebra crossing 42'), 'the answer is never shown back');
        assert.deepEqual(await w.questions(user.id), [], 'nothing stored');
      }
      const security = await browser.follow('/account/security');
      assert.match(security.body, /id="add-security-question"/, 'still to set up');
    });

    it('stores a preset question with the normalised answer as an argon2id hash, never the answer', async () => {
      const { user, browser } = await onAccountPage();
      const form = await browser.follow(QUESTION_PAGE);
      assert.match(form.body, /What was the name of your first pet\?/);
      const done = await browser.submit(form, QUESTION_PAGE, { question: 'firstPet', answer: '  Mister   WHISKERS ' });
      assert.equal(done.status, 200);
      assert.match(done.url, /\/account\/security\?done=twoStepAdded/);
      assert.ok(!done.body.includes('WHISKERS') && !done.body.toLowerCase().includes('whiskers'), 'the answer is not shown back');

      const [question] = await w.questions(user.id);
      assert.ok(question);
      assert.deepEqual(question.data, { preset: 'firstPet' });
      const row = await w.knex()('authenticators').where({ id: question.id }).first();
      assert.match(row.secret_hash, /^\$argon2id\$v=19\$[mtp=\d,]+\$/);
      const param = (name: string) => Number(new RegExp(`[$,]${name}=(\\d+)`).exec(row.secret_hash)?.[1]);
      assert.ok(param('m') >= 19456 && param('t') >= 2 && param('p') >= 1, `at least OWASP's argon2id parameters: ${row.secret_hash.slice(0, 40)}`);
      assert.doesNotMatch(JSON.stringify(row), /whiskers/i, 'the answer is stored only as a hash');
      assert.equal(row.secret_sealed, null);
      const { hasher } = server.server.services;
      assert.ok(await hasher.verify(row.secret_hash, 'mister whiskers'), 'the hash is of the normalised answer');
      assert.equal(await hasher.verify(row.secret_hash, '  Mister   WHISKERS '), false, 'not of the answer as typed');
      assert.doesNotMatch(server.logText(), /whiskers/i);
    });

    it('stores an own question; the sign-in asks it, and takes the answer in full-width letters, other case and spacing', async () => {
      const { user, browser } = await onAccountPage();
      const form = await browser.follow(QUESTION_PAGE);
      // Full-width letters and an ideographic space fold to ASCII under NFKC.
      const done = await browser.submit(form, QUESTION_PAGE, {
        question: 'custom', customQuestion: '  Where did   we meet? ', answer: 'ＣＡＦＥ\u3000Ｌｕｎａ',
      });
      assert.equal(done.status, 200, done.body.slice(0, 300));
      const [question] = await w.questions(user.id);
      assert.deepEqual(question?.data, { custom: 'Where did we meet?' });
      assert.ok(await server.server.services.hasher.verify(question!.secretHash!, 'cafe luna'));

      const { browser: other, req, page } = await w.atQuestion(user);
      assert.match(page.body, /id="question">Where did we meet\?</);
      const claims = await w.toApp(other, await w.answer(other, page, '  cafe   LUNA '), req.checks);
      assert.equal(claims.acr, ONE);
    });

    it('changes the question in place: one question per account, the old answer stops working', async () => {
      const { user, browser } = await onAccountPage();
      await browser.submit(await browser.follow(QUESTION_PAGE), QUESTION_PAGE, { question: 'firstPet', answer: 'old answer' });
      const [before] = await w.questions(user.id);
      const changed = await browser.submit(await browser.follow(QUESTION_PAGE), QUESTION_PAGE, { question: 'firstCar', answer: 'new answer' });
      assert.match(changed.url, /done=twoStepChanged/);
      const after = await w.questions(user.id);
      assert.equal(after.length, 1);
      assert.equal(after[0]!.id, before!.id);
      assert.deepEqual(after[0]!.data, { preset: 'firstCar' });
      const { hasher } = server.server.services;
      assert.equal(await hasher.verify(after[0]!.secretHash!, 'old answer'), false);
      assert.ok(await hasher.verify(after[0]!.secretHash!, 'new answer'));
    });

    it('comes first: until it exists the other methods are disabled and cannot be set up', async () => {
      const { user, browser } = await onAccountPage();
      const security = await browser.follow('/account/security');
      for (const kind of ['totp', 'sms']) {
        assert.match(security.body, new RegExp(`id="method-${kind}-state" href="#method-security-question">Needs the security question first<`), kind);
        assert.doesNotMatch(security.body, new RegExp(`href="/account/two-step/${kind}"`), `${kind} has no link`);
      }
      const csrf = formFields(security, '/account/sign-out').csrf!;
      for (const kind of ['totp', 'sms', 'recovery-code']) {
        const shown = await browser.follow(`/account/two-step/${kind}`);
        assert.equal(shown.status, 400, `GET ${kind}`);
        assert.match(shown.body, /set up a security question first/);
        assert.doesNotMatch(shown.body, /id="totp-secret"|id="recovery-codes"/, 'no seed, no codes');
        const posted = await browser.follow(`/account/two-step/${kind}`, { form: { csrf, code: '123456', label: 'Mallory', phone: '+447911123456' } });
        assert.equal(posted.status, 400, `POST ${kind}`);
        assert.match(posted.body, /set up a security question first/);
      }
      assert.deepEqual(await w.store().authenticators.listForUser(user.id), [], 'nothing was enrolled');
      assert.equal(await w.store().codes.countLive('recovery_code', user.id), 0);
    });

    it('cannot be removed while an authenticator app exists', async () => {
      const user = await w.newUser();
      const { id: questionId } = await addQuestion(w.store(), w.hash, user.id);
      const app = await addTotp(w.store(), user.id);
      // The account page at mfa: password, then the app (the stronger method is offered first; the question under "Try another way").
      const browser = new CookieClient(server.url);
      const login = await browser.follow('/account');
      const codePage = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.match(codePage.body, /name="code"/, 'the app is offered first');
      const others = await browser.follow(`${new URL(codePage.url).pathname}/methods`);
      assert.match(others.body, /Answer your security question/);
      await awaitFreshStep(5);
      const account = await browser.submit(codePage, '/verify', { code: totpCode(app.key, nowSeconds()) });
      assert.equal(new URL(account.url).pathname, '/account', account.body.slice(0, 300));

      const security = await browser.follow('/account/security');
      const refused = await browser.follow('/account/two-step/remove', { form: { ...formFields(security, '/account/two-step/remove'), id: questionId } });
      assert.equal(refused.status, 400);
      assert.match(refused.body, /Your security question is needed while you have other two-step methods\./);
      assert.equal((await w.questions(user.id)).length, 1, 'still there');
    });
  });

  describe('signing in', () => {
    it('never asks the question before the password is right', async () => {
      const { user } = await w.userWithQuestion();
      const { page } = await w.afterPassword({ email: user.email, password: 'not the password' });
      assert.equal(page.status, 401);
      assert.doesNotMatch(page.body, /name="answer"|first pet/);
    });

    it('asks a new device the question (saying why) and completes at 1fa with amr pwd, kba, rba, never mfa', async () => {
      const { user } = await w.userWithQuestion();
      const { browser, req, page } = await w.atQuestion(user);
      assert.match(page.body, NEW_DEVICE);
      assert.match(page.body, /What was the name of your first pet\?/);
      assert.doesNotMatch(page.body, /Try another way/, 'no other method to offer');
      const claims = await w.toApp(browser, await w.answer(browser, page, '  REX the   Dog'), req.checks);
      assert.equal(claims.acr, ONE);
      const amr = (claims.amr ?? []) as string[];
      for (const value of ['pwd', 'kba', 'rba']) assert.ok(amr.includes(value), `amr has ${value}: ${amr.join(',')}`);
      assert.ok(!amr.includes('mfa'), 'a question is knowledge like the password: never mfa');
      assert.ok(!amr.includes('otp'));

      // The same browser is now a known device on a known network: a new sign-in is not asked.
      const again = await w.afterPassword(user, { prompt: 'login' }, browser);
      assert.doesNotMatch(again.page.body, /name="answer"/, 'not asked again');
      const second = await w.toApp(browser, again.page, again.req.checks);
      assert.equal(second.acr, ONE);
      const secondAmr = (second.amr ?? []) as string[];
      assert.ok(secondAmr.includes('rba'), 'the risk engine decided');
      assert.ok(!secondAmr.includes('kba'), 'no question was asked');
      assert.ok(second.auth_time! >= claims.auth_time!, 'a new sign-in took place');
    });

    it('never gives mfa: an app asking for mfa gets "Two-step verification needed", then unmet_authentication_requirements', async () => {
      const { user } = await w.userWithQuestion();
      for (const [party, params] of [[w.rp, { acr_values: MFA, state: 'mfa-state' }], [w.strictRp, { state: 'mfa-state' }]] as const) {
        const { browser, page } = await w.afterPassword(user, params, undefined, party);
        assert.equal(page.status, 200);
        assert.equal(page.stoppedAt, undefined, 'never a code');
        assert.match(page.body, /Two-step verification needed/);
        assert.doesNotMatch(page.body, /name="answer"/, 'the question is not even asked: it cannot reach mfa');
        assert.match(page.body, /Add an authenticator app or a phone on your account page/);
        const back = await browser.submit(page, '/unmet');
        const response = responseParams(back.stoppedAt);
        assert.equal(response.get('error'), 'unmet_authentication_requirements');
        assert.equal(response.get('code'), null);
        assert.equal(response.get('state'), 'mfa-state');
      }
    });

    it('refuses a wrong answer with 401 and the question again, and counts it', async () => {
      const { user } = await w.userWithQuestion();
      const { browser, req, page } = await w.atQuestion(user);
      const wrong = await w.answer(browser, page, 'Fido');
      assert.equal(wrong.status, 401);
      assert.match(wrong.body, WRONG);
      assert.match(wrong.body, /What was the name of your first pet\?/);
      assert.notEqual(pendingOf(wrong, '/verify'), pendingOf(page, '/verify'));
      assert.ok(!wrong.body.includes('Fido'), 'the answer is not shown back');
      assert.equal(await w.failures(user.email), 1);
      const empty = await w.answer(browser, wrong, '   ');
      assert.equal(empty.status, 400);
      assert.match(empty.body, /Enter your answer\./);
      assert.equal(await w.failures(user.email), 1, 'an empty answer is not a guess');
      await w.toApp(browser, await w.answer(browser, empty, 'rex the dog'), req.checks);
      assert.equal(await w.failures(user.email), 0, 'a completed sign-in clears the counter');
    });

    it('kills the challenge after 5 wrong answers: the methods page with 400; the right answer on it is refused', async () => {
      const { user } = await w.userWithQuestion();
      const start = await w.atQuestion(user);
      const { browser } = start;
      let page: Browsed = start.page;
      for (let i = 1; i <= 4; i++) {
        page = await w.answer(browser, page, `wrong answer ${i}`);
        assert.equal(page.status, 401, `wrong answer ${i}`);
      }
      const last = page;
      const dead = await w.answer(browser, last, 'wrong answer 5');
      assert.equal(dead.status, 400);
      assert.match(dead.body, /Too many wrong answers for this request/);
      assert.doesNotMatch(dead.body, /name="answer"/);
      const right = await w.answer(browser, last, 'rex the dog');
      assert.equal(right.status, 400);
      assert.equal(passed(right), false);
      assert.equal(await w.failures(user.email), 5);
    });
  });

  describe('throttling on the shared failure counter', () => {
    it('counts wrong answers with wrong passwords; then even the right answer and the right password get 429', async () => {
      const { user } = await w.userWithQuestion();
      for (let i = 0; i < 3; i++) assert.equal((await w.wrongPassword(user)).status, 401);
      const { browser, page: first } = await w.atQuestion(user);
      assert.equal(await w.failures(user.email), 3, 'the right password does not reset the counter');
      let page: Browsed = await w.answer(browser, first, 'Fido');
      assert.equal(page.status, 401);
      page = await w.answer(browser, page, 'Rover');
      assert.equal(page.status, 401);
      assert.equal(await w.failures(user.email), 5, 'wrong answers count on the same counter as wrong passwords');
      await sleep(1100);
      page = await w.answer(browser, page, 'Spot');
      assert.equal(page.status, 401, 'the 6th failure, after the first delay');
      const refused = await w.answer(browser, page, 'rex the dog');
      assert.equal(refused.status, 429, 'the right answer is refused while the account waits');
      assert.match(refused.body, THROTTLED);
      assert.equal(passed(refused), false);
      const password = await w.afterPassword(user);
      assert.equal(password.page.status, 429, 'and so is the right password');
      assert.match(password.page.body, THROTTLED);
      assert.equal(await w.failures(user.email), 6);
    });

    it('keeps counting across sign-ins: a right password followed by a wrong answer, again and again', async () => {
      const { user } = await w.userWithQuestion();
      for (let round = 1; round <= 4; round++) {
        const { browser, page } = await w.atQuestion(user);
        assert.equal(await w.failures(user.email), round - 1);
        assert.equal((await w.answer(browser, page, `guess ${round}`)).status, 401);
        assert.equal(await w.failures(user.email), round);
      }
    });
  });
});

describe('the security question and the log at debug level', () => {
  let server: TestServer;
  const w = world(() => server);
  before(async () => {
    server = await startTestServer({ logLevel: 'debug' });
    await w.init();
  });
  after(() => server.stop());

  it('never writes an answer to the log: not when it is set, not when it is given, right or wrong', async () => {
    const user = await w.newUser();
    const account = new CookieClient(server.url);
    await signInToAccount(account, user);
    const form = await account.follow(QUESTION_PAGE);
    const short = await account.submit(form, QUESTION_PAGE, { question: 'custom', customQuestion: 'Why', answer: 'Quetzalcoatl Umbrella' });
    assert.equal(short.status, 400);
    const done = await account.submit(short, QUESTION_PAGE, { question: 'custom', customQuestion: 'My secret place?', answer: 'Quetzalcoatl   Umbrella' });
    assert.equal(done.status, 200);

    const { browser, req, page } = await w.atQuestion(user);
    const wrong = await w.answer(browser, page, 'Zanzibar Lighthouse');
    assert.equal(wrong.status, 401);
    await w.toApp(browser, await w.answer(browser, wrong, 'QUETZALCOATL umbrella'), req.checks);

    const log = server.logText();
    assert.match(log, /"level":20,.*"path":"\/interaction\/[^"]+\/verify"/, 'the log is at debug level and has the requests in it');
    for (const secret of ['Quetzalcoatl', 'Umbrella', 'Zanzibar', 'Lighthouse']) {
      assert.doesNotMatch(log, new RegExp(secret, 'i'), `${secret} is not in the log`);
    }
  });
});
