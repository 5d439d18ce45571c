/**
 * The limits against prompt bombing (README, "Mobile app prompts"; src/push/prompts.ts), with the shipped
 * defaults, attacked by real sign-ins through a relying party: one prompt per 30 s, doubling after prompts
 * left unanswered; 5 per 15 minutes and 20 a day per account; a cap per IP; one waiting prompt per account;
 * an hour's pause after "This wasn't me"; the failure counter never reset by a new prompt; and all of it on
 * counters two instances share. Time passing is simulated by ending the counter the wait is kept in.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RelyingParty } from '../helpers/rp.ts';
import { PushService } from '../helpers/push-service.ts';
import { numberOf, promptsOf, PUSH_TEST_CONFIG, signInToPrompt, userWithPhone } from '../helpers/push-setup.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { failureCount, inFours } from '../helpers/two-step.ts';

describe('limits on prompts', () => {
  let a: TestServer;
  let b: TestServer;
  let push: PushService;
  let rp: RelyingParty;
  const knex = () => a.server.services.database.knex;
  type Phoned = Awaited<ReturnType<typeof userWithPhone>>;

  before(async () => {
    push = await PushService.start();
    a = await startTestServer({ config: PUSH_TEST_CONFIG });
    b = await startTestServer({ db: a.db, config: { ...PUSH_TEST_CONFIG, issuer: a.url } });
    rp = await RelyingParty.create(a.url, await a.addClient({ name: 'Bombard', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(async () => {
    await b.stop();
    await a.stop();
    await push.stop();
  });

  /** The prompts pushed to this user's phone so far. */
  const pushes = (user: Phoned) => push.received.filter((p) => p.id === user.phone.subscription!.id && p.status === 201 && /"type":"prompt"/.test(p.plaintext ?? '')).length;
  /** As if the 30 s (or the doubled wait) since the last prompt had passed. */
  const waitPassed = (user: Phoned) => knex()('counters').where({ key: `push:interval:${user.id}` }).delete();
  const counter = (key: string) => knex()('counters').where({ key }).andWhere('expires_at', '>', new Date()).first();
  /** The seconds a counter still runs. */
  const secondsLeft = async (key: string) => Math.round(((await counter(key)).expires_at.getTime() - Date.now()) / 1000);
  const signIn = (user: Phoned) => signInToPrompt(a, rp, user);
  /** Every counter of prompts from this machine's address is cleared: each test starts below the IP cap. */
  const forgetIp = () => knex()('counters').where('key', 'like', 'push:ip:%').delete();

  it('ships the documented defaults', () => {
    const limits = a.config.twoStep.push;
    assert.deepEqual(
      [limits.numberDigits, limits.promptTtlSeconds, limits.resendIntervalSeconds, limits.maxPer15Minutes, limits.maxPerDay, limits.maxPerIpPer15Minutes, limits.pauseAfterNotMeSeconds],
      [3, 120, 30, 5, 20, 30, 3600],
    );
  });

  it('20 rapid sign-ins prompt once; with 30 s between them, 5 in 15 minutes; with 15 minutes between those, 20 a day', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'bomb', { push });
    await inFours(20, () => signIn(user));
    assert.equal(pushes(user), 1, 'one prompt per 30 s');

    for (let i = 0; i < 6; i++) {
      await waitPassed(user);
      await signIn(user);
    }
    assert.equal(pushes(user), 5, 'at most 5 prompts in 15 minutes');

    for (let i = 0; i < 20; i++) {
      await waitPassed(user);
      await knex()('counters').where({ key: `push:15m:${user.id}` }).delete();
      await signIn(user);
      await forgetIp();
    }
    assert.equal(pushes(user), 20, 'at most 20 prompts a day');
    assert.ok(await counter(`push:day:${user.id}`));
  });

  it('refuses "Send again" within 30 s, and doubles the wait after each prompt left unanswered, from the very next one', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'resend', { push });
    const { browser, page } = await signIn(user);
    assert.equal(pushes(user), 1);
    const again = await browser.submit(page, '/verify/resend');
    assert.equal(pushes(user), 1, '"Send again" at once sends nothing');
    assert.match(again.body, /\b30 seconds\b/, 'and says how long to wait');

    /** The last prompt was sent this many seconds ago. */
    const sentAgo = (seconds: number) => knex()('counters').where({ key: `push:interval:${user.id}` })
      .update({ updated_at: new Date(Date.now() - seconds * 1000) });
    // The first prompt is left unanswered and replaced by the second: the wait before the third is 60 s.
    await sentAgo(31);
    await browser.submit(page, '/verify/resend');
    assert.equal(pushes(user), 2);
    await sentAgo(45);
    const early = await browser.submit(page, '/verify/resend');
    assert.equal(pushes(user), 2, '45 s after a replaced prompt is too soon');
    assert.match(early.body, /\b60 seconds\b/);
    await sentAgo(61);
    await browser.submit(page, '/verify/resend');
    assert.equal(pushes(user), 3, 'the wait doubled to 60 s');
    // Two left unanswered: 120 s.
    await sentAgo(100);
    assert.match((await browser.submit(page, '/verify/resend')).body, /\b120 seconds\b/);
    assert.equal(pushes(user), 3);
    await sentAgo(121);
    await browser.submit(page, '/verify/resend');
    assert.equal(pushes(user), 4, 'and to 120 s');
  });

  it('keeps one waiting prompt per account: a new sign-in\'s prompt replaces the old one', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'single', { push });
    await signIn(user);
    const [first] = (await promptsOf(user.phone.device)).prompts;
    const firstNumber = await numberOf(a, user.id);
    await waitPassed(user);
    const second = await signIn(user);
    const { prompts } = await promptsOf(user.phone.device);
    assert.equal(prompts.length, 1, 'one prompt waits');
    assert.notEqual(prompts[0]!.id, first!.id);
    const old = await user.phone.device.request('POST', `/app/api/prompts/${first!.id}/approve`, { number: firstNumber });
    assert.ok([404, 410].includes(old.status), `the replaced prompt cannot be approved, got ${old.status}`);
    const number = await numberOf(a, user.id, second.page);
    assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${prompts[0]!.id}/approve`, { number })).status, 200);
  });

  it('shares the counters between two instances: rapid sign-ins on both prompt once', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'cluster', { push });
    const rpB = await RelyingParty.create(a.url, await a.addClient({ name: 'Bombard via B', redirectUris: ['http://localhost:9999/cb'] }));
    let n = 0;
    await inFours(12, () => {
      const onB = n++ % 2 === 1;
      return onB ? signInToPrompt(b, rpB, user) : signIn(user);
    });
    assert.equal(pushes(user), 1, 'one prompt in 30 s, whichever instance asked');
    await waitPassed(user);
    await signInToPrompt(b, rpB, user);
    assert.equal(pushes(user), 2, 'B prompts once the wait kept on the shared counter passed');
  });

  it('caps prompts per IP address', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'ipcap', { push });
    await signIn(user);
    assert.equal(pushes(user), 1);
    const ipKey = (await knex()('counters').where('key', 'like', 'push:ip:%').first('key')).key as string;
    await knex()('counters').where({ key: ipKey }).update({ count: a.config.twoStep.push.maxPerIpPer15Minutes });
    await waitPassed(user);
    await signIn(user);
    assert.equal(pushes(user), 1, 'no prompt from an address that sent the most in 15 minutes');
  });

  it('pauses prompts for an hour after "This wasn\'t me"', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'paused', { push });
    await signIn(user);
    const [prompt] = (await promptsOf(user.phone.device)).prompts;
    assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${prompt!.id}/deny`, { reason: 'not-me' })).status, 200);
    const left = await secondsLeft(`push:paused:${user.id}`);
    assert.ok(left > 3500 && left <= 3600, `paused for an hour, ${left} s left`);
    await waitPassed(user);
    const { page } = await signIn(user);
    assert.equal(pushes(user), 1, 'no prompt while paused');
    assert.deepEqual((await promptsOf(user.phone.device)).prompts, []);
    assert.doesNotMatch(page.body, /data-number=/, 'no number to type');
    // Once the hour is over, prompts come again.
    await knex()('counters').where({ key: `push:paused:${user.id}` }).delete();
    await waitPassed(user);
    await signIn(user);
    assert.equal(pushes(user), 2);
  });

  it('never resets the failure counter with a new prompt', async () => {
    await forgetIp();
    const user = await userWithPhone(a, 'counted', { push });
    await signIn(user);
    const number = await numberOf(a, user.id);
    const wrong = String((Number(number) + 1) % 1000).padStart(3, '0');
    const [prompt] = (await promptsOf(user.phone.device)).prompts;
    for (let i = 0; i < 2; i++) {
      assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${prompt!.id}/approve`, { number: wrong })).json.error, 'wrong_number');
    }
    assert.equal(await failureCount(knex(), user.email), 2);
    await waitPassed(user);
    await signIn(user);
    assert.equal(pushes(user), 2, 'a new prompt');
    assert.equal(await failureCount(knex(), user.email), 2, 'the two wrong numbers still count');
  });
});
