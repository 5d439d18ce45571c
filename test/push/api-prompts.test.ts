/**
 * Answering a sign-in's prompt from the phone (docs/mobile-app-protocol.md), attacked: a real sign-in
 * through a relying party parks at its push step (the sign-in page shows the number), and a SoftwareDevice
 * answers over the signed API. The app never learns the number; a missing, wrong or another sign-in's
 * number is refused and counted; three wrong end the prompt; another user's phone sees nothing; a replayed
 * or late approval fails; the first answer stands; "Cancel" and "This wasn't me" end the sign-in, the
 * latter with a mail that links to changing the password and signing out everywhere.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accountKey } from '../../src/security/attempts.ts';
import { signInToAccount } from '../account/helpers.ts';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { PushService } from '../helpers/push-service.ts';
import { beginPairing, numberOf, pairingNumberOf, pairThroughAccountPage, promptsOf, PUSH_TEST_CONFIG, signInToPrompt, type PromptJson, userWithPhone } from '../helpers/push-setup.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { enrolQuestion, failureCount, throughToApp } from '../helpers/two-step.ts';

/** Six digits here: a number that long never turns up by chance in a timestamp or an id of the JSON searched for it. */
const DIGITS = 6;

describe('answering a sign-in prompt from the phone', () => {
  let server: TestServer;
  let push: PushService;
  let mail: MailBox;
  let rp: RelyingParty;
  const knex = () => server.server.services.database.knex;

  before(async () => {
    [push, mail] = await Promise.all([PushService.start(), startMailBox()]);
    server = await startTestServer({
      config: {
        twoStep: { push: { ...PUSH_TEST_CONFIG.twoStep.push, numberDigits: DIGITS, maxPerIpPer15Minutes: 1000 } },
        mail: { smtpUrl: mail.url },
      },
    });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Ledger', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(async () => {
    await Promise.all([server.stop(), push.stop(), mail.stop()]);
  });

  /** A user with a phone, signing in: the page's number, the prompt as the phone sees it, and the push it got. */
  async function prompted(prefix: string) {
    const user = await userWithPhone(server, prefix, { push });
    const signIn = await signInToPrompt(server, rp, user);
    const number = await numberOf(server, user.id, signIn.page);
    assert.match(number, new RegExp(`^\\d{${DIGITS}}$`), 'the sign-in page shows the number');
    const { prompts } = await promptsOf(user.phone.device);
    const prompt = prompts.find((p) => p.kind === 'sign-in');
    assert.ok(prompt, 'the phone sees the sign-in prompt');
    const pushed = await push.waitFor((p) => p.id === user.phone.subscription!.id && !!p.plaintext?.includes(prompt.id));
    return { user, ...signIn, number, prompt, pushed };
  }

  const approve = (device: { request: (m: string, p: string, b?: unknown) => Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> }, prompt: PromptJson, body: unknown) =>
    device.request('POST', `/app/api/prompts/${prompt.id}/approve`, body);

  it('never shows the phone the number: not in the prompts, the prompt, or the push', async () => {
    const { user, number, prompt, pushed } = await prompted('never');
    const list = await user.phone.device.request('GET', '/app/api/prompts');
    const one = await user.phone.device.request('GET', `/app/api/prompts/${prompt.id}`);
    assert.equal(one.status, 200);
    for (const text of [JSON.stringify(list.json), JSON.stringify(one.json), pushed.plaintext!]) {
      assert.ok(!text.includes(number), `the number is not in ${text}`);
      assert.doesNotMatch(text, /"number"/);
    }
    assert.equal(prompt.numberDigits, DIGITS, 'the phone knows how many digits to ask for');
    assert.equal(prompt.client.name, 'Ledger');
    assert.equal(prompt.place.ip, '127.0.0.x', 'the address, masked');
    assert.ok(Date.parse(prompt.expiresAt) > Date.now());
  });

  it('refuses no number, a wrong number and another sign-in\'s number; each wrong one counts as a failure', async () => {
    const mine = await prompted('numbers');
    const theirs = await prompted('others');
    const before = await failureCount(knex(), mine.user.email);
    for (const body of [{}, { number: '' }, { number: 'abc' }, { number: '1' }]) {
      const res = await approve(mine.user.phone.device, mine.prompt, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error, 'number_required');
    }
    assert.equal(await failureCount(knex(), mine.user.email), before, 'no number is no guess');
    const other = theirs.number === mine.number ? String((Number(mine.number) + 1) % 10 ** DIGITS).padStart(DIGITS, '0') : theirs.number;
    const res = await approve(mine.user.phone.device, mine.prompt, { number: other });
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'wrong_number');
    assert.equal(res.json.attemptsLeft, 2);
    assert.equal(await failureCount(knex(), mine.user.email), before + 1, 'a wrong number counts on the account');
    // Still answerable with the right number, typed in another script's digits.
    const arabic = mine.number.replace(/\d/g, (d) => String.fromCodePoint(0x0660 + Number(d)));
    const right = await approve(mine.user.phone.device, mine.prompt, { number: arabic });
    assert.equal(right.status, 200, JSON.stringify(right.json));
    assert.equal(await failureCount(knex(), mine.user.email), before + 1, 'the right number is not a failure, and clears nothing');
    // The other sign-in is untouched.
    assert.equal((await approve(theirs.user.phone.device, theirs.prompt, { number: theirs.number })).status, 200);
  });

  it('ends the prompt at the third wrong number (410), and the sign-in with it', async () => {
    const { user, browser, page, number, prompt } = await prompted('thrice');
    const wrong = String((Number(number) + 1) % 10 ** DIGITS).padStart(DIGITS, '0');
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await approve(user.phone.device, prompt, { number: wrong }));
    assert.deepEqual(answers.map((a) => [a.status, a.json.error, a.json.attemptsLeft]), [[400, 'wrong_number', 2], [400, 'wrong_number', 1], [410, 'prompt_ended', 0]]);
    assert.equal(await failureCount(knex(), user.email), 3);
    const late = await approve(user.phone.device, prompt, { number });
    assert.equal(late.status, 409, 'the right number after the third wrong one is too late');
    assert.equal(late.json.error, 'already_answered');
    const after = await browser.submit(page, '/verify');
    assert.ok(!after.stoppedAt, 'no way through to the app');
    assert.match(after.body, /prompt|phone|another way/i);
  });

  it('shows another user\'s phone nothing of the prompt, and lets it answer nothing', async () => {
    const { prompt, number } = await prompted('victim');
    const intruder = await userWithPhone(server, 'intruder');
    assert.deepEqual((await promptsOf(intruder.phone.device)).prompts, []);
    const peek = await intruder.phone.device.request('GET', `/app/api/prompts/${prompt.id}`);
    assert.equal(peek.status, 404);
    assert.equal(peek.json.error, 'unknown_prompt');
    const yes = await approve(intruder.phone.device, prompt, { number });
    assert.equal(yes.status, 404);
    const no = await intruder.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'not-me' });
    assert.equal(no.status, 404);
    assert.equal(await failureCount(knex(), intruder.email), 0);
  });

  it('refuses a replayed approval (same nonce) and a second approval', async () => {
    const { user, prompt, number } = await prompted('replay');
    const signed = user.phone.device.signRequest('POST', `/app/api/prompts/${prompt.id}/approve`, { number });
    const send = () => fetch(signed.url, { method: 'POST', headers: signed.headers, body: signed.body });
    assert.equal((await send()).status, 200);
    const replay = await send();
    assert.equal(replay.status, 401);
    assert.equal(((await replay.json()) as { error: string }).error, 'replayed');
    const again = await approve(user.phone.device, prompt, { number });
    assert.equal(again.status, 409);
    assert.equal(again.json.error, 'already_answered');
  });

  it('refuses an approval after the prompt expired (410 expired), and the sign-in does not go through', async () => {
    const { user, browser, page, prompt, number } = await prompted('late');
    await knex()('pending_steps').where({ user_id: user.id, kind: 'push' }).update({ expires_at: new Date(Date.now() - 1000) });
    const res = await approve(user.phone.device, prompt, { number });
    assert.equal(res.status, 410);
    assert.equal(res.json.error, 'expired');
    assert.deepEqual((await promptsOf(user.phone.device)).prompts, []);
    const after = await browser.submit(page, '/verify');
    assert.ok(!after.stoppedAt, 'no way through to the app');
  });

  it('lets the first answer stand: of parallel approvals and denials exactly one wins', async () => {
    const { user, prompt, number } = await prompted('race');
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => i % 2
      ? user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'cancel' })
      : approve(user.phone.device, prompt, { number })));
    assert.equal(answers.filter((a) => a.status === 200).length, 1, answers.map((a) => `${a.status} ${String(a.json.error)}`).join(', '));
    assert.ok(answers.filter((a) => a.status !== 200).every((a) => a.status === 409 && a.json.error === 'already_answered'));
    const row = await knex()('pending_steps').where({ user_id: user.id, kind: 'push' }).whereRaw(`data->>'promptId' = ?`, [prompt.id]).first('status');
    assert.ok(['approved', 'denied'].includes(row.status));
  });

  it('answers 429 with Retry-After while the account is slowed down by earlier failures, without looking at the number', async () => {
    const { user, prompt, number } = await prompted('slowed');
    await knex()('counters').insert({ key: accountKey(user.email), count: 8, expires_at: new Date(Date.now() + 3600_000), updated_at: new Date() })
      .onConflict('key').merge();
    const res = await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/approve`, { number });
    assert.equal(res.status, 429);
    assert.equal(res.json.error, 'too_many_attempts');
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.equal(await failureCount(knex(), user.email), 8, 'the refused attempt is not counted');
    assert.equal((await promptsOf(user.phone.device)).prompts.length, 1, 'and the prompt still waits');
  });

  it('approved with the number: the sign-in continues to the app with mca at the mfa level, and the approval is recorded', async () => {
    const { user, browser, page, prompt, number, checks } = await prompted('approver');
    assert.equal((await approve(user.phone.device, prompt, { number })).status, 200);
    const claims = await throughToApp(browser, await browser.submit(page, '/verify'), rp, checks);
    assert.equal(claims.acr, 'urn:latchkey:acr:mfa');
    assert.deepEqual([...(claims.amr as string[])].sort(), ['mca', 'mfa', 'pwd']);
    const event = await knex()('security_events').where({ user_id: user.id, type: 'push.approved' }).first();
    assert.ok(event, 'push.approved recorded');
    assert.equal(event.details.device, 'Test phone');
  });

  it('"Cancel" ends the sign-in: the app gets access_denied', async () => {
    const { user, browser, page, prompt } = await prompted('canceller');
    const res = await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'cancel' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { status: 'denied' });
    const after = await browser.submit(page, '/verify');
    assert.ok(after.stoppedAt?.startsWith(rp.redirectUri), `back at the app, got ${after.status} at ${after.url}`);
    assert.equal(new URL(after.stoppedAt!).searchParams.get('error'), 'access_denied');
    assert.ok(await knex()('security_events').where({ user_id: user.id, type: 'push.denied' }).first());
    assert.equal(await failureCount(knex(), user.email), 0, 'saying no is not a wrong answer');
    const bad = await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'because' });
    assert.equal(bad.status, 400);
  });

  it('"This wasn\'t me" ends the sign-in, counts a failure, records it, and mails links to change the password and sign out everywhere', async () => {
    const { user, browser, page, prompt } = await prompted('notme');
    const since = mail.messages.length;
    const res = await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'not-me' });
    assert.equal(res.status, 200);
    const after = await browser.submit(page, '/verify');
    assert.equal(new URL(after.stoppedAt!).searchParams.get('error'), 'access_denied');
    assert.equal(await failureCount(knex(), user.email), 1);
    assert.ok(await knex()('security_events').where({ user_id: user.id, type: 'push.denied_not_me' }).first());

    const sent = await mail.next(user.email, { since });
    assert.match(sent.subject, /tried to sign in/);
    assert.match(sent.text, /Ledger/);
    assert.match(sent.text, /Test phone/);
    assert.match(sent.text, /127\.0\.0\.x/);
    assert.ok(sent.text.includes(`${server.url}/account/password`), 'a link to change the password');
    const notMe = new RegExp(`${server.url}/not-me\\?token=[A-Za-z0-9_-]+`).exec(sent.text)?.[0];
    assert.ok(notMe, 'a "sign out everywhere" link, the existing /not-me one');
    const landing = await new CookieClient(server.url).follow(notMe);
    assert.equal(landing.status, 200, 'the link is live');
    assert.match(landing.body, /action="\/not-me"/);
  });

  it('pairing a second phone while a sign-in prompt waits: the pairing is no prompt, and neither ends the other', async () => {
    const user = await userWithPhone(server, 'second', { push });
    const pairing = await beginPairing(server, user.id);
    assert.deepEqual((await promptsOf(user.phone.device)).prompts, [], 'the account page\'s pairing is not a prompt');
    const { page } = await signInToPrompt(server, rp, user);
    const number = await numberOf(server, user.id, page);
    assert.ok(await knex()('pending_steps').where({ id: pairing.pending.id }).first(), 'the new sign-in prompt did not end the pairing');
    const phone = SoftwareDevice.create(server.url);
    assert.equal((await phone.pair(pairing.code, null, 'Second')).status, 201);
    const { prompts } = await promptsOf(phone);
    assert.deepEqual(prompts.map((p) => p.kind), ['test'], 'the new phone sees its test prompt only');
    assert.equal((await phone.request('POST', `/app/api/prompts/${prompts[0]!.id}/approve`, { number: await pairingNumberOf(server, user.id) })).status, 200);
    const [signIn] = (await promptsOf(user.phone.device)).prompts;
    assert.equal(signIn?.kind, 'sign-in', 'the sign-in prompt still waits');
    assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${signIn.id}/approve`, { number })).status, 200);
  });

  it('pairing through the account page mails "two-step changed" once, from the account page, not from the API', async () => {
    const user = await server.newUser('mailed');
    const browser = new CookieClient(server.url);
    await signInToAccount(browser, user);
    await enrolQuestion(browser);
    const since = mail.messages.length;
    const phone = await pairThroughAccountPage(server, browser, { push, name: 'Pixel 9' });
    assert.match(phone.page.body, /recovery-codes/, 'the first possession method comes with recovery codes');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const mails = mail.messages.slice(since).filter((m) => m.to.includes(user.email));
    const added = mails.filter((m) => /Pixel 9/.test(m.text));
    assert.equal(added.length, 1, mails.map((m) => m.text).join('\n---\n'));
    assert.match(added[0]!.subject, /two-step verification was changed/);
    assert.equal(mails.length, 2, 'that one, and the one for the new recovery codes');
  });
});
