/**
 * Bursts of parallel guesses, as a black-box review sent them: the failure limits hold however many
 * guesses arrive at once. On PostgreSQL the burst is spread over two instances sharing the database; the
 * embedded database belongs to one process, so there both halves go to the one instance.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, csrfOf, findForm } from '../helpers/browser.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { smsConfig, startSmsReceiver, type SmsReceiver } from '../helpers/receiver.ts';
import { startTestServer } from '../helpers/server.ts';
import {
  addQuestion, addRecoveryCodes, addSmsPhone, addTotp, failureCount, leftSecondStep, nowSeconds, pendingOf, totpCode, type Browsed,
} from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';

/** One or two instances on one database, a relying party, and a count of the passwords checked against argon2. */
async function startCluster(config: Record<string, unknown>) {
  const a = await startTestServer({ config });
  const b = TEST_DATABASE_URL ? await startTestServer({ db: a.db, config: { ...config, issuer: a.url } }) : a;
  const rp = await RelyingParty.create(a.url, await a.addClient({ name: 'Burst', redirectUris: [REDIRECT] }));
  let checked = 0;
  for (const s of new Set([a, b])) {
    const { hasher } = s.server.services;
    const verify = hasher.verify.bind(hasher);
    hasher.verify = (hash, secret) => {
      checked++;
      return verify(hash, secret);
    };
  }
  const knex = () => a.server.services.database.knex;
  return {
    a, b, rp, knex,
    /** Password checks since the last call. */
    takeChecked() {
      const n = checked;
      checked = 0;
      return n;
    },
    /** The i-th request of a burst: even ones to A, odd ones to B. */
    at: (i: number, path: string) => `${i % 2 ? b.url : a.url}${path}`,
    async stop() {
      if (b !== a) await b.stop();
      await a.stop();
    },
  };
}
type Cluster = Awaited<ReturnType<typeof startCluster>>;

/** Guesses a burst may get checked in `elapsedMs` with the default delays: the 5 free ones, then 1 s, 2 s, 4 s… apart. */
const allowedIn = (elapsedMs: number) => 5 + Math.ceil(Math.log2(elapsedMs / 1000 + 1));

/** Sign-in pages of fresh browsers, ready for a password. */
async function loginPages(c: Cluster, n: number, params: Record<string, string> = {}) {
  return Promise.all(Array.from({ length: n }, async () => {
    const browser = new CookieClient(c.a.url);
    const page = await browser.follow((await c.rp.authorization(params)).url);
    return { browser, page };
  }));
}

/** `n` wrong passwords for `email` at once, spread over both instances; the statuses and how long the burst took. */
async function passwordBurst(c: Cluster, email: string, n: number) {
  const pages = await loginPages(c, n);
  const started = Date.now();
  const answers = await Promise.all(pages.map(({ browser, page }, i) => {
    const form = findForm(page.body, '/login');
    return browser.request(c.at(i, new URL(form.action, page.url).pathname), {
      form: { ...form.hidden, email, password: `wrong guess number ${i}` }, headers: { origin: c.a.url },
    });
  }));
  return { statuses: answers.map((x) => x.status), elapsedMs: Date.now() - started };
}

async function signIn(c: Cluster, user: { email: string; password: string }) {
  const { browser, page } = (await loginPages(c, 1))[0]!;
  return browser.submit(page, '/login', user);
}

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('parallel password guesses, default limits', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({});
  });
  after(() => c.stop());

  for (const n of [50, 150]) {
    it(`checks at most the free failures (and one per delay) of ${n} parallel wrong passwords`, async (t) => {
      const user = { email: `burst${n}@example.com`, password: `the right password for ${n}` };
      await c.a.addUser(user);
      c.takeChecked();
      const { statuses, elapsedMs } = await passwordBurst(c, user.email, n);
      const checked = c.takeChecked();
      assert.ok(statuses.every((s) => s === 401 || s === 429), statuses.join(','));
      assert.equal(count(statuses, 401), checked, 'every password checked was answered 401, no other');
      assert.ok(checked >= 5, `the free failures are checked (${checked})`);
      assert.ok(checked <= allowedIn(elapsedMs), `${checked} passwords checked in ${elapsedMs} ms`);
      assert.equal(await failureCount(c.knex(), user.email), checked, 'each check is on the shared counter');
      t.diagnostic(`${checked} of ${n} parallel wrong passwords checked in ${elapsedMs} ms (${TEST_DATABASE_URL ? 'two instances' : 'one instance'})`);
    });
  }
});

describe('parallel guesses against the lock', () => {
  const LOCK = 10;
  let c: Cluster;
  let mailbox: MailBox;
  let sms: SmsReceiver;
  before(async () => {
    mailbox = await startMailBox();
    sms = await startSmsReceiver();
    // No delays before the lock, so that every guess a burst gets checked is one the lock allows.
    c = await startCluster({
      throttle: { freeFailures: LOCK, lockAfter: LOCK },
      mail: { smtpUrl: mailbox.url },
      twoStep: { sms: smsConfig(sms, 'webhook', { maxPerHour: 30, resendIntervalSeconds: 10 }) },
    });
  });
  after(async () => {
    await c.stop();
    await sms.stop();
    await mailbox.stop();
  });

  it('checks no more than the lock allows of 150 parallel wrong passwords, refuses the right one after, and a reset link lets the owner back in', async () => {
    const user = { email: 'locked-burst@example.com', password: 'the owner knows this one' };
    await c.a.addUser(user);
    c.takeChecked();
    const { statuses } = await passwordBurst(c, user.email, 150);
    assert.equal(c.takeChecked(), LOCK);
    assert.equal(count(statuses, 401), LOCK);
    assert.equal(count(statuses, 429), 150 - LOCK);
    const refused = await signIn(c, user);
    assert.equal(refused.status, 429);
    assert.match(refused.body, /Reset your password by email/);
    assert.equal(c.takeChecked(), 0, 'the right password is not even checked');

    // The owner asks for a reset link, sets a new password and signs in.
    const { browser, page } = (await loginPages(c, 1))[0]!;
    const forgot = await browser.follow(/href="(\/interaction\/[^"]+\/reset)"/.exec(page.body)![1]!);
    const since = mailbox.messages.length;
    await browser.submit(forgot, '/reset', { email: user.email });
    const link = mailbox.link(await mailbox.next(user.email, { since }));
    const resetPage = await browser.follow(link);
    const done = await browser.submit(resetPage, '/reset', { password: 'a brand new password 2026' });
    assert.equal(done.status, 200, done.body.slice(0, 300));
    assert.ok(leftSecondStep(await signIn(c, { email: user.email, password: 'a brand new password 2026' })), 'signed in after the reset');
  });

  /**
   * `n` sign-ins of a user who knows the password, each parked at the second step on `method` (an
   * authenticator id; the default method when absent), in a new browser (a new device). Parked one after
   * another: the password is right. The app asks for two-step unless `params` say otherwise.
   */
  async function park(user: { email: string; password: string }, n: number, method?: string, between?: () => Promise<void>, params: Record<string, string> = { acr_values: MFA }) {
    const parked: { browser: CookieClient; page: Browsed }[] = [];
    for (let i = 0; i < n; i++) {
      await between?.();
      const { browser, page } = (await loginPages(c, 1, params))[0]!;
      let step = await browser.submit(page, '/login', user);
      if (method) step = await browser.follow(`${new URL(step.url).pathname}?method=${method}`);
      assert.equal(step.status, 200, step.body.slice(0, 300));
      parked.push({ browser, page: step });
    }
    return parked;
  }

  /** One answer per parked sign-in, all at once over both instances; the statuses. */
  async function answerBurst(parked: { browser: CookieClient; page: Browsed }[], fields: (i: number) => Record<string, string>) {
    const answers = await Promise.all(parked.map(({ browser, page }, i) => browser.request(c.at(i, new URL(page.url).pathname), {
      form: { csrf: csrfOf(page), pending: pendingOf(page, '/verify'), ...fields(i) }, headers: { origin: c.a.url },
    })));
    return answers.map((x) => x.status);
  }

  async function secondStepUser(name: string) {
    const user = { email: `${name}@example.com`, password: `${name} knows the password` };
    const { id } = await c.a.addUser(user);
    const store = c.a.server.services.store;
    await addQuestion(store, (s) => c.a.server.services.hasher.hash(s), id);
    return { user, id, store };
  }

  /** The burst's wrong answers, then the right one on a sign-in parked before: only the lock's worth checked, the right one refused. */
  async function attack(user: { email: string }, parked: { browser: CookieClient; page: Browsed }[], wrong: (i: number) => Record<string, string>, right: () => Record<string, string>) {
    const last = parked.pop()!;
    assert.equal(await failureCount(c.knex(), user.email), 0, 'parking with the right password counts nothing');
    const statuses = await answerBurst(parked, wrong);
    assert.equal(count(statuses, 401), LOCK, statuses.join(','));
    assert.equal(count(statuses, 429), parked.length - LOCK, statuses.join(','));
    assert.equal(await failureCount(c.knex(), user.email), LOCK);
    const [status] = await answerBurst([last], right);
    assert.equal(status, 429, 'the right answer after the lock is refused');
  }

  it('checks no more than the lock allows of 30 parallel wrong authenticator-app codes', async () => {
    const { user, id, store } = await secondStepUser('totp-burst');
    const app = await addTotp(store, id);
    const parked = await park(user, 31);
    const right = totpCode(app.key, nowSeconds());
    const wrong = (i: number) => ({ code: String((Number(right) + 1 + i) % 1_000_000).padStart(6, '0') });
    await attack(user, parked, wrong, () => ({ code: totpCode(app.key, nowSeconds()) }));
  });

  it('checks no more than the lock allows of 25 parallel wrong security-question answers (asked of a new device)', async () => {
    const { user } = await secondStepUser('question-burst');
    // The app asks for nothing: "only when the sign-in looks risky" asks the question of a new device.
    const parked = await park(user, 26, undefined, undefined, {});
    await attack(user, parked, (i) => ({ answer: `not the pet ${i}` }), () => ({ answer: 'rex the dog' }));
  });

  it('checks no more than the lock allows of 25 parallel wrong recovery codes', async () => {
    const { user, id, store } = await secondStepUser('recovery-burst');
    await addTotp(store, id);
    const [code] = await addRecoveryCodes(store, id);
    const recovery = (await store.authenticators.listForUser(id)).find((x) => x.kind === 'recovery-code')!;
    const parked = await park(user, 26, recovery.id);
    await attack(user, parked, (i) => ({ code: `ZZZZ-ZZZZ-ZZZZ-${'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'[i]}ZZZ` }), () => ({ code: code! }));
    assert.equal(await store.codes.countLive('recovery_code', id), 10, 'the right code was not spent');
  });

  it('checks no more than the lock allows of 25 parallel wrong text-message codes', async () => {
    const { user, id, store } = await secondStepUser('sms-burst');
    const phone = await addSmsPhone(store, id);
    // Each parked sign-in got its own code; the attacker waited out the resend interval between them.
    const since = sms.messages.length;
    const parked = await park(user, 26, phone.id, () => c.knex()('counters').where('key', 'like', 'sms:interval:%').delete().then(() => undefined));
    assert.equal(sms.messages.length - since, 26);
    const last = sms.messages.at(-1)!.code;
    await attack(user, parked, (i) => ({ code: String((Number(last) + 1 + i) % 1_000_000).padStart(6, '0') }), () => ({ code: last }));
  });
});
