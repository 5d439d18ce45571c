/**
 * The pages of mobile app prompts, over HTTP with the cookie-keeping client and a software phone (a Node key
 * pair speaking the app's signed API): pairing a phone on the account page and the status it polls, the
 * phones on "Password & security", the sign-in page that waits on a prompt (its number, "Continue", "Send
 * again"), a denial, and the fallback when the phone app is signed out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formFields, post, signInToAccount } from '../account/helpers.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { PushService } from '../helpers/push-service.ts';
import { numberOf, pairPhone, promptsOf, PUSH_TEST_CONFIG, userWithPhone, vapidPublicKey, type PairedPhone } from '../helpers/push-setup.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addTotp, failureCount, recoveryCodesOn } from '../helpers/two-step.ts';
import { factorContext } from '../../src/factors/index.ts';
import { outOfUseAmong, takesLastPossession } from '../../src/factors/removal.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
/** Not the default (3): the page shows as many digits as configured. */
const DIGITS = 6;
/** The number as a word of its own in some text (not six digits inside a longer number or an id). */
const standalone = (n: string) => new RegExp(`(?<![0-9A-Za-z_-])${n}(?![0-9A-Za-z_-])`);

describe('the pages of mobile app prompts', () => {
  let server: TestServer;
  let push: PushService;
  let rp: RelyingParty;
  const s = () => server.server.services;
  const knex = () => s().database.knex;

  before(async () => {
    [server, push] = await Promise.all([
      startTestServer({ logLevel: 'debug', config: { twoStep: { push: { ...PUSH_TEST_CONFIG.twoStep.push, numberDigits: DIGITS } } } }),
      PushService.start(),
    ]);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Bank', redirectUris: [REDIRECT] }));
  });
  after(async () => {
    await Promise.all([server.stop(), push.stop()]);
  });

  const events = async (userId: string, type: string) =>
    (await knex()('security_events').where({ user_id: userId, type }).select('details')).map((r: { details: unknown }) =>
      (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>);
  const verifyAction = (uid: string) => `/interaction/${uid}/verify`;
  const isPromptPage = (page: Page) => /data-number="\d+"/.test(page.body) && /Check your phone/.test(page.body);

  /** A fresh browser through the app's authorization request (mfa) and the password: the second step's page, and the request's checks. */
  async function toPrompt(user: { email: string; password: string }) {
    const browser = new CookieClient(server.url);
    const req = await rp.authorization({ acr_values: MFA });
    const login = await browser.follow(req.url);
    const page: Page = await browser.submit(login, '/login', user);
    const uid = /\/interaction\/([^/?]+)\/verify/.exec(page.url)?.[1];
    assert.ok(uid, `at the second step, got ${page.status} at ${page.url}`);
    return { browser, page, uid, checks: req.checks };
  }

  /** The phone approves the sign-in prompt waiting for it, typing the number the page shows. */
  async function approveOnPhone(phone: PairedPhone, userId: string, page: Page) {
    const number = await numberOf(server, userId, page);
    const prompt = (await promptsOf(phone.device)).prompts.find((p) => p.kind === 'sign-in');
    assert.ok(prompt, 'the phone sees the sign-in prompt');
    const res = await phone.device.request('POST', `/app/api/prompts/${prompt.id}/approve`, { number });
    assert.equal(res.status, 200, JSON.stringify(res.json));
  }

  /** Consent if asked, then the app's callback: the ID token's claims. */
  async function atApp(browser: CookieClient, page: Page & { stoppedAt?: string }, checks: Awaited<ReturnType<RelyingParty['authorization']>>['checks']) {
    let p = page;
    if (!p.stoppedAt && /\/confirm"/.test(p.body)) p = await browser.submit(p, '/confirm');
    assert.ok(p.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${p.status} at ${p.url}: ${p.body.slice(0, 300)}`);
    return (await rp.callback(p.stoppedAt!, checks)).claims()!;
  }

  /** Signs in to the account page with a phone: the password, then whatever the second step asks (the prompt, approved; the question). */
  async function accountWithPhone(user: { id: string; email: string; password: string }, phone: PairedPhone, path = '/account/security') {
    const browser = new CookieClient(server.url);
    let page: Page = await browser.follow(path);
    for (let i = 0; i < 5 && new URL(page.url).pathname !== path; i++) {
      if (/\/login"/.test(page.body)) page = await browser.submit(page, '/login', { email: user.email, password: user.password });
      else if (isPromptPage(page)) {
        await approveOnPhone(phone, user.id, page);
        page = await browser.submit(page, '/verify');
      } else if (/name="answer"/.test(page.body)) page = await browser.submit(page, '/verify', { answer: 'rex the dog' });
      else assert.fail(`stuck at ${page.url} (${page.status}): ${/id="form-error">([^<]*)/.exec(page.body)?.[1]} ${page.body.slice(0, 300)}`);
    }
    assert.equal(new URL(page.url).pathname, path);
    return { browser, page };
  }

  describe('pairing a phone on the account page', () => {
    it('shows the code, its QR code and "use this device"; the status goes waiting → paired → confirmed, and only for this session', async () => {
      const user = await server.newUser('pair-page');
      const browser = new CookieClient(server.url);
      await signInToAccount(browser, user);
      await addQuestion(s().store, (a) => s().hasher.hash(a), user.id);

      const security = await browser.follow('/account/security');
      assert.match(security.body, /id="method-push"[\s\S]*?Mobile app prompts/, 'the card');
      assert.match(security.body, /href="\/account\/two-step\/push"/, 'with Set up');

      let page = await browser.follow('/account/two-step/push');
      assert.equal(page.status, 200, page.body.slice(0, 300));
      const code = /id="push-code">([0-9A-Z]{4}-[0-9A-Z]{4})</.exec(page.body)?.[1];
      assert.ok(code, 'the short code');
      assert.match(page.body, /<img class="qr" id="push-qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"[^>]*alt="QR code that pairs your phone with your account"/);
      assert.ok(page.body.includes(`href="${server.url}/app/pair#code=${code}"`), '"use this device" opens the app\'s pairing with the code');
      assert.ok(page.body.includes(`${server.url}/app/`), 'where to install the app');
      assert.match(page.body, /<time datetime="[^"]+">/, 'when the code expires');
      assert.match(page.body, /<script src="\/assets\/push-pair\.js" defer><\/script>/);
      assert.doesNotMatch(page.body, /<script>(?!<)/, 'no inline script');

      const status = async (pending: string, client = browser) => {
        const res = await client.request(`/account/two-step/push/status?pending=${pending}`, { headers: { accept: 'application/json' } });
        assert.equal(res.status, 200, res.body.slice(0, 200));
        assert.equal(res.headers.get('cache-control'), 'no-store');
        return (JSON.parse(res.body) as { state: string }).state;
      };
      const pendingOf = (p: Page) => formFields(p, '/account/two-step/push').pending!;
      assert.equal(await status(pendingOf(page)), 'waiting');

      // Continue before the phone paired: the page stays, with the reason, and the same code.
      page = await post(browser, page, '/account/two-step/push');
      assert.equal(page.status, 400);
      assert.match(page.body, /Your phone is not paired yet/);
      assert.ok(page.body.includes(`id="push-code">${code}<`), 'the same code');
      assert.equal(await status(pendingOf(page)), 'waiting');

      // Another account session (another user) asking about this step learns nothing.
      const other = await server.newUser('pair-other');
      const otherBrowser = new CookieClient(server.url);
      await signInToAccount(otherBrowser, other);
      assert.equal(await status(pendingOf(page), otherBrowser), 'expired');
      assert.equal(await status('A'.repeat(32)), 'expired', 'an unknown step');
      const anonymous = await new CookieClient(server.url).request(`/account/two-step/push/status?pending=${pendingOf(page)}`);
      assert.notEqual(anonymous.status, 200, 'no account session, no answer');

      const device = SoftwareDevice.create(server.url);
      const paired = await device.pair(code, push.subscribe({ applicationServerKey: await vapidPublicKey(server) }), 'Pixel 8');
      assert.equal(paired.status, 201, JSON.stringify(paired.json));
      assert.equal(await status(pendingOf(page)), 'paired');
      assert.equal(await status(pendingOf(page), otherBrowser), 'expired');

      page = await post(browser, page, '/account/two-step/push');
      assert.equal(page.status, 400);
      assert.match(page.body, /its test prompt is not approved yet/);

      // The number the phone must type: on this page only (its status, and the page itself once paired).
      const { number } = JSON.parse((await browser.request(`/account/two-step/push/status?pending=${pendingOf(page)}`, { headers: { accept: 'application/json' } })).body) as { number?: string };
      assert.match(number ?? '', /^\d+$/);
      assert.match(page.body, new RegExp(`id="push-pair-number-value"[^>]*>${number}<`), 'the page shows it');
      const theirs = JSON.parse((await otherBrowser.request(`/account/two-step/push/status?pending=${pendingOf(page)}`, { headers: { accept: 'application/json' } })).body) as { number?: string };
      assert.equal(theirs.number, undefined, 'another session is not told the number');
      const test = (await promptsOf(device)).prompts.find((p) => p.kind === 'test');
      assert.ok(test);
      assert.equal((await device.request('POST', `/app/api/prompts/${test.id}/approve`, {})).status, 400, 'the test prompt wants the number');
      assert.equal(await status(pendingOf(page)), 'paired');
      assert.equal((await device.request('POST', `/app/api/prompts/${test.id}/approve`, { number })).status, 200);
      assert.equal(await status(pendingOf(page)), 'confirmed');

      const done = await post(browser, page, '/account/two-step/push');
      assert.equal(done.status, 200, done.body.slice(0, 300));
      assert.equal(recoveryCodesOn(done).length, 10, 'the first possession method comes with recovery codes');
      const methods = (await s().store.authenticators.listForUser(user.id)).filter((a) => a.kind === 'push');
      assert.deepEqual(methods.map((a) => a.label), ['Pixel 8']);
      assert.equal((await events(user.id, 'two_step.added')).at(-1)?.kind, 'push');
      assert.equal(await status(pendingOf(page)), 'expired', 'the step is spent');
    });
  });

  describe('a pairing code that died unused', () => {
    it('shows the code\'s own expiry (5 minutes), says expired once it is, and Continue starts again with a new code', async () => {
      const user = await server.newUser('pair-expired');
      const browser = new CookieClient(server.url);
      await signInToAccount(browser, user);
      await addQuestion(s().store, (a) => s().hasher.hash(a), user.id);
      const page = await browser.follow('/account/two-step/push');
      const code = /id="push-code">([0-9A-Z-]+)</.exec(page.body)![1];
      const until = Date.parse(/<time datetime="([^"]+)">/.exec(page.body)![1]!);
      assert.ok(Math.abs(until - (Date.now() + 300_000)) < 10_000, 'the code\'s 5 minutes, not the enrolment step\'s 15');
      const pending = formFields(page, '/account/two-step/push').pending!;
      await knex()('pending_steps').where({ id: pending }).update({ data: knex().raw(`jsonb_set(data, '{codeExpiresAt}', to_jsonb(?::text))`, [new Date(Date.now() - 1000).toISOString()]) });
      const res = await browser.request(`/account/two-step/push/status?pending=${pending}`, { headers: { accept: 'application/json' } });
      assert.deepEqual(JSON.parse(res.body), { state: 'expired' });
      const again = await post(browser, page, '/account/two-step/push');
      assert.equal(again.status, 400);
      assert.match(again.body, /The code expired\. Here is a new one\./);
      const fresh = /id="push-code">([0-9A-Z-]+)</.exec(again.body)?.[1];
      assert.ok(fresh && fresh !== code, 'a new code');
    });
  });

  describe('the phones on "Password & security"', () => {
    it('lists every phone with its state and when it was last seen; renaming renames the phone, removing removes it', async () => {
      const user = await userWithPhone(server, 'card-', { push, name: 'Active phone' });
      const openApp = await pairPhone(server, user.id, { name: 'Tablet' });
      const gone = await pairPhone(server, user.id, { name: 'Old phone' });
      await s().store.pushDevices.signOut(gone.id);

      const { browser, page } = await accountWithPhone(user, user.phone);
      const card = /<section class="method[^"]*" id="method-push"[\s\S]*?<\/section>/.exec(page.body)?.[0];
      assert.ok(card, 'the Mobile app prompts card');
      const items = [...card.matchAll(/<li data-id="([^"]+)" class="push-device push-device-([a-z-]+)"><span class="item-name">([^<]*)<\/span> · <span class="device-state">([^<]*)<\/span><\/li>/g)];
      const byId = new Map(items.map((m) => [m[1], { state: m[2], name: m[3], text: m[4] }]));
      assert.equal(byId.size, 3, 'every phone, not just the one the sign-in uses');
      assert.deepEqual(byId.get(user.phone.authenticatorId), { state: 'active', name: 'Active phone', text: 'Active: gets notifications' });
      assert.deepEqual(byId.get(openApp.authenticatorId), { state: 'open-app', name: 'Tablet', text: 'Checks for prompts when the app is open' });
      assert.deepEqual(byId.get(gone.authenticatorId), { state: 'signed-out', name: 'Old phone', text: 'Signed out' });
      // Under "Manage": each phone with when it was last seen (a time the page shows in the viewer's zone).
      const managed = /<details class="manage" id="manage-push">[\s\S]*?<\/details>/.exec(card)![0];
      for (const phone of [user.phone, openApp, gone]) {
        const item = new RegExp(`<li data-id="${phone.authenticatorId}">[\\s\\S]*?<\\/li>`).exec(managed)?.[0];
        assert.match(item ?? '', /class="meta push-device-seen"><span class="device-state">[^<]+<\/span> · last seen <time datetime="[^"]+">/);
        assert.match(item ?? '', /action="\/account\/two-step\/rename"[\s\S]*action="\/account\/two-step\/remove"/, 'rename and remove');
      }

      const renamed = await browser.follow('/account/two-step/rename', { form: { ...formFields(page, '/account/two-step/rename'), id: openApp.authenticatorId, label: 'Work tablet' } });
      assert.equal(renamed.status, 200, renamed.body.slice(0, 300));
      assert.match(renamed.url, /done=twoStepRenamed/);
      const devices = await s().store.pushDevices.listForUser(user.id);
      assert.equal(devices.find((d) => d.id === openApp.id)?.name, 'Work tablet', 'the phone took the new name');
      assert.equal(devices.find((d) => d.id === user.phone.id)?.name, 'Active phone', 'the others kept theirs');
      assert.match(renamed.body, /Work tablet/);

      const removed = await browser.follow('/account/two-step/remove', { form: { ...formFields(renamed, '/account/two-step/remove'), id: gone.authenticatorId } });
      assert.match(removed.url, /done=twoStepRemoved/);
      assert.equal((await s().store.pushDevices.listForUser(user.id)).some((d) => d.id === gone.id), false, 'the phone went with its method');
    });
  });

  describe('the sign-in waiting on the phone', () => {
    it('shows the number (as many digits as configured) only on the page: never in the push, the app API or the log', async () => {
      const user = await userWithPhone(server, 'number-', { push });
      const sub = user.phone.subscription!;
      const before = push.received.length;
      const { page } = await toPrompt(user);
      assert.equal(page.status, 200);
      assert.ok(isPromptPage(page), page.body.slice(0, 500));
      const [row] = (await s().store.pending.waitingFor(user.id, 'push')).filter((r) => r.data.purpose === 'sign-in');
      assert.ok(row?.secret);
      assert.equal(row.secret.length, DIGITS);
      const shown = /<p class="push-number" id="push-number" role="img" aria-label="The number to type on your phone: (\d+)" data-number="(\d+)">(\d+)<\/p>/.exec(page.body);
      assert.ok(shown, 'the number in large type, labelled for screen readers');
      assert.deepEqual([shown[1], shown[2], shown[3]], [row.secret, row.secret, row.secret]);
      assert.match(page.body, /It asks about signing in to Bank\./);
      assert.match(page.body, /The prompt expires at <time datetime="/);
      assert.match(page.body, /<script src="\/assets\/push-wait\.js" defer><\/script>/);

      const pushed = await push.waitFor((p) => p.id === sub.id && push.received.indexOf(p) >= before && /"prompt"/.test(p.plaintext ?? ''));
      assert.equal(pushed.status, 201);
      assert.doesNotMatch(pushed.plaintext!, standalone(row.secret), 'not in the push message');
      const listed = await promptsOf(user.phone.device);
      assert.doesNotMatch(JSON.stringify(listed), standalone(row.secret), 'not in what the app gets');
      assert.equal(listed.prompts.find((p) => p.kind === 'sign-in')?.numberDigits, DIGITS);
      assert.doesNotMatch(server.logText(), standalone(row.secret), 'not in the log');
    });

    it('"Continue" while waiting keeps the page and counts no failure; once approved it completes with mca at mfa', async () => {
      const user = await userWithPhone(server, 'continue-', { push });
      const { browser, page, uid, checks } = await toPrompt(user);
      assert.ok(isPromptPage(page));
      const number = await numberOf(server, user.id, page);
      const failuresBefore = await failureCount(knex(), user.email);

      const early = await post(browser, page, verifyAction(uid));
      assert.equal(early.status, 409);
      assert.match(early.body, /Not approved yet — approve the prompt on your phone, then continue\./);
      assert.equal(await numberOf(server, user.id, early), number, 'the same prompt, the same number');
      assert.equal(await failureCount(knex(), user.email), failuresBefore, 'not counted as a failure');
      assert.deepEqual(await events(user.id, 'two_step.failed'), [], 'not recorded as one');

      // The status the page polls follows the step the page now holds.
      const pending = formFields(early, verifyAction(uid)).pending!;
      const status = async () => JSON.parse((await browser.request(`/interaction/${uid}/verify/status?pending=${pending}`, { headers: { accept: 'application/json' } })).body).status;
      assert.equal(await status(), 'waiting');
      await approveOnPhone(user.phone, user.id, early);
      assert.equal(await status(), 'approved');

      const done = await post(browser, early, verifyAction(uid));
      const claims = await atApp(browser, done, checks);
      assert.equal(claims.acr, MFA);
      assert.deepEqual([...(claims.amr as string[])].sort(), ['mca', 'mfa', 'pwd']);
    });

    it('a prompt denied on the phone ends the sign-in: the app gets access_denied', async () => {
      const user = await userWithPhone(server, 'denied-', { push });
      const { browser, page, uid } = await toPrompt(user);
      const prompt = (await promptsOf(user.phone.device)).prompts.find((p) => p.kind === 'sign-in');
      assert.ok(prompt);
      assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason: 'cancel' })).status, 200);
      const ended = await post(browser, page, verifyAction(uid));
      assert.ok(ended.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${ended.status} at ${ended.url}: ${ended.body.slice(0, 300)}`);
      const params = new URL(ended.stoppedAt!).searchParams;
      assert.equal(params.get('error'), 'access_denied');
      assert.equal(params.get('code'), null);
    });

    it('a denial ends the sign-in on the server: a browser that never posts the prompt cannot go on another way', async () => {
      for (const [reason, next] of [['cancel', 'methods'], ['not-me', 'app']] as const) {
        const user = await userWithPhone(server, `deny-${reason}-`, { push });
        const app = await addTotp(s().store, user.id, 'Authenticator');
        await s().store.authenticators.markUsed(user.phone.authenticatorId);
        const { browser, uid } = await toPrompt(user);
        const prompt = (await promptsOf(user.phone.device)).prompts.find((p) => p.kind === 'sign-in');
        assert.ok(prompt);
        assert.equal((await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason })).status, 200);
        assert.equal(await s().store.progress.find(uid), undefined, 'the sign-in in progress is gone at once');
        // The attacker's browser skips the page's own post and asks for another method instead.
        const path = next === 'methods' ? `/interaction/${uid}/verify/methods` : `/interaction/${uid}/verify?method=${app.id}`;
        const ended = await browser.follow(path);
        assert.ok(ended.stoppedAt?.startsWith(REDIRECT), `${reason}: back at the app, got ${ended.status} at ${ended.url}: ${ended.body.slice(0, 200)}`);
        assert.equal(new URL(ended.stoppedAt!).searchParams.get('error'), 'access_denied');
        assert.equal(new URL(ended.stoppedAt!).searchParams.get('code'), null);
        assert.equal((await knex()('pending_steps').where({ binding: `interaction:${uid}` })).length, 0, 'nothing of the sign-in is left');
      }
    });

    it('three wrong numbers end the prompt: the page says so and offers "Send again" and "Try another way"', async () => {
      const user = await userWithPhone(server, 'ended-', { push });
      await addTotp(s().store, user.id);
      await s().store.authenticators.markUsed(user.phone.authenticatorId);
      const { browser, page, uid } = await toPrompt(user);
      const number = await numberOf(server, user.id, page);
      const wrong = String((Number(number) + 1) % 10 ** DIGITS).padStart(DIGITS, '0');
      const prompt = (await promptsOf(user.phone.device)).prompts.find((p) => p.kind === 'sign-in')!;
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push((await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/approve`, { number: wrong })).status);
      assert.deepEqual(answers, [400, 400, 410]);
      const ended = await post(browser, page, verifyAction(uid));
      assert.equal(ended.status, 400);
      assert.match(ended.body, /The prompt was stopped after three wrong numbers\./);
      assert.doesNotMatch(ended.body, /data-number=/, 'no number any more');
      assert.match(ended.body, /action="\/interaction\/[^"]+\/verify\/resend"[\s\S]*Send again/);
      assert.match(ended.body, /Try another way/);
    });

    it('"Send again" within 30 s is refused with 429 and the wait, and the prompt sent before still holds', async () => {
      const user = await userWithPhone(server, 'resend-', { push });
      const { browser, page, uid } = await toPrompt(user);
      const number = await numberOf(server, user.id, page);
      const again = await post(browser, page, `${verifyAction(uid)}/resend`);
      assert.equal(again.status, 429);
      assert.match(again.body, /A prompt was sent just now\. Wait 30 seconds before sending another one\./);
      assert.equal(await numberOf(server, user.id, again), number, 'the same prompt, still waiting');
      assert.equal((await s().store.pending.waitingFor(user.id, 'push')).filter((r) => r.data.purpose === 'sign-in').length, 1);
    });

    it('opens the next method at once when the phone app is signed out, and says why; "Try another way" shows it unavailable', async () => {
      const user = await userWithPhone(server, 'fallback-', { push });
      await addTotp(s().store, user.id, 'Authenticator');
      // The phone is the method used last: the sign-in would open on it.
      await s().store.authenticators.markUsed(user.phone.authenticatorId);
      await s().store.pushDevices.signOut(user.phone.id);
      const pushesBefore = push.received.length;

      const { browser, page, uid } = await toPrompt(user);
      assert.equal(page.status, 200);
      assert.ok(!isPromptPage(page), 'no prompt page');
      assert.match(page.body, /id="skipped-note">Your phone app is signed out, so we&#39;ll verify another way\.</);
      assert.match(page.body, /Enter the 6-digit code from Authenticator/, 'the authenticator app opens');
      assert.deepEqual((await s().store.pending.waitingFor(user.id, 'push')).filter((r) => r.data.purpose === 'sign-in'), [], 'no prompt was made');
      assert.equal(push.received.length, pushesBefore, 'nothing was pushed');

      const methods = await browser.follow(`/interaction/${uid}/verify/methods`);
      assert.match(methods.body, /<li class="unavailable">\s*<strong>Get a prompt on your phone \(Test phone\)<\/strong>\s*<p class="meta">Your phone app is signed out, so we&#39;ll verify another way\.<\/p>/);
      const asked = await browser.follow(`/interaction/${uid}/verify?method=${user.phone.authenticatorId}`);
      assert.equal(asked.status, 400, 'asking for it anyway is refused with the reason');
      assert.match(asked.body, /Your phone app is signed out/);
    });
  });
  it('a phone whose app signed out is no method to keep: the last usable authenticator app cannot go under "verify at every sign-in"', async () => {
    const user = await userWithPhone(server, 'keep-', { push });
    const app = await addTotp(s().store, user.id, 'Authenticator');
    const fctx = factorContext(s());
    const removable = async () => {
      const all = await s().store.authenticators.listForUser(user.id);
      const targets = all.filter((a) => a.id === app.id);
      const outOfUse = await outOfUseAmong(all.filter((a) => a.id !== app.id), fctx);
      return !takesLastPossession(all.filter((a) => !outOfUse.has(a.id)), targets);
    };
    assert.equal(await removable(), true, 'while the phone gets prompts, the app may go');
    await s().store.pushDevices.signOut(user.phone.id);
    assert.equal(await removable(), false, 'once the phone signed out, the app is the last usable method');
    assert.equal(takesLastPossession(await s().store.authenticators.listForUser(user.id), [(await s().store.authenticators.find(user.id, app.id))!]), false,
      'the recovery codes still see the phone (they back it up until it is removed)');
  });
});
