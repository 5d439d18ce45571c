/**
 * Codes by text message, driven from the outside: the account page adds a phone, the sign-in pages ask for
 * the code, and a real HTTP receiver plays the SMS provider (the signed webhook and the Twilio-shaped API).
 * Every scenario runs once per provider, each with its own server, database and receiver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { codeHasher } from '../../src/factors/codes.ts';
import { accountKey } from '../../src/security/attempts.ts';
import { formFields, post, signInToAccount } from '../account/helpers.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { sleep } from '../helpers/oauth.ts';
import { smsConfig, startSmsReceiver, TWILIO_SID, TWILIO_TOKEN, WEBHOOK_SECRET, type ReceivedSms, type SmsReceiver } from '../helpers/receiver.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  addQuestion, addRecoveryCodes, addSmsPhone, addTotp, failureCount, recoveryCodesOn,
} from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const REDIRECT = 'http://localhost:9999/cb';
/** The shortest interval the configuration allows: the one scenario that waits for it waits 10 s. */
const RESEND_SECONDS = 10;
const TWILIO_FROM = '+15005550006';

/**
 * The code as a word of its own in some text, as it would be written if it leaked ("code":"123456"), not
 * six digits that happen to sit inside a longer number, a nonce or a random id.
 */
const standalone = (code: string) => new RegExp(`(?<![0-9A-Za-z_-])${code}(?![0-9A-Za-z_-])`);
/** Any other 6-digit code. */
const otherThan = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');
const providerDown = /We couldn(&#39;|')t send a text message right now/;

// The two providers' suites run side by side (each with its own server, database and receiver), so their
// waits for the resend interval overlap; the scenarios inside each run one after another.
describe('codes by text message', { concurrency: true }, () => {
  describe('shipped limits', { concurrency: false }, () => {
    it('ships a 5-minute code, 30 s between codes and at most 5 codes an hour', () => {
      const { sms } = loadConfig({ env: {} }).twoStep;
      assert.equal(sms.codeTtlSeconds, 300);
      assert.equal(sms.resendIntervalSeconds, 30);
      assert.equal(sms.maxPerHour, 5);
      assert.equal(sms.provider, 'log', 'development writes codes to the log; production refuses that (config.test.ts)');
    });

    it('refuses a code lifetime above 10 minutes, and a resend interval below 10 seconds', () => {
      const load = (sms: Record<string, unknown>) => loadConfig({ env: {}, overrides: { twoStep: { sms } } });
      assert.throws(() => load({ codeTtlSeconds: 601 }), (err: Error) => err instanceof ConfigError && /twoStep\.sms\.codeTtlSeconds/.test(err.message));
      assert.equal(load({ codeTtlSeconds: 600 }).twoStep.sms.codeTtlSeconds, 600);
      assert.throws(() => load({ resendIntervalSeconds: 9 }), (err: Error) => err instanceof ConfigError && /twoStep\.sms\.resendIntervalSeconds/.test(err.message));
    });
  });

  for (const provider of ['webhook', 'twilio'] as const) {
    describe(`through the ${provider} provider`, { concurrency: false }, () => {
      let receiver: SmsReceiver;
      let server: TestServer;
      let rp: RelyingParty;
      let users = 0;

      before(async () => {
        receiver = await startSmsReceiver();
        server = await startTestServer({
          logLevel: 'debug',
          config: { twoStep: { sms: smsConfig(receiver, provider, { resendIntervalSeconds: RESEND_SECONDS, timeoutMs: 500 }) } },
        });
        rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Bank', redirectUris: [REDIRECT] }));
      });
      after(async () => {
        await server.stop();
        await receiver.stop();
      });

      const store = () => server.server.services.store;
      const knex = () => server.server.services.database.knex;

      interface TestUser {
        id: string;
        email: string;
        password: string;
        /** A mobile number of this user's own, in E.164. */
        phone: string;
      }

      /** A fresh user (with a mobile number of their own) for each scenario, so that none depends on another. */
      async function newUser(): Promise<TestUser> {
        const n = ++users;
        const email = `sms-${provider}-${n}@example.com`;
        const password = `sms user ${n} has a long password`;
        const user = await server.addUser({ email, password });
        return { id: user.id, email, password, phone: `+447911${123400 + n}` };
      }

      /** A user with a phone (straight into the store: these scenarios are about signing in). */
      async function userWithPhone() {
        const user = await newUser();
        const { id } = await addSmsPhone(store(), user.id, user.phone);
        return { ...user, smsId: id };
      }

      /** Texts received by this user's phone since `since`. */
      const textsTo = (phone: string, since = 0) => receiver.messages.slice(since).filter((m) => m.to === phone);

      const failures = (email: string) => failureCount(knex(), email);

      /** Lets the resend interval pass without waiting for it (the window is the database's, like every counter). */
      async function endResendInterval(userId: string) {
        const changed = await knex()('counters').where({ key: `sms:interval:${userId}` }).update({ expires_at: new Date(Date.now() - 1000) });
        assert.equal(changed, 1, 'a text was counted in the interval');
      }

      const pendingRows = (uid: string) => knex()('pending_steps').where({ binding: `interaction:${uid}` });

      /**
       * A fresh browser, an authorization request (mfa unless told otherwise) and the right password: the
       * page it leads to (the second step, which texts the code when SMS is the method it opens on).
       */
      async function passwordDone(user: TestUser, params: Record<string, string> = { acr_values: MFA }) {
        const browser = new CookieClient(server.url);
        const req = await rp.authorization(params);
        const login = await browser.follow(req.url);
        assert.match(login.body, /\/login"/, 'the sign-in page');
        const since = receiver.messages.length;
        const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
        const uid = /\/interaction\/([^/?]+)\/verify/.exec(page.url)?.[1];
        assert.ok(uid, `a second step expected, got ${page.status} at ${page.url}`);
        return { browser, req, page, uid, since };
      }

      /** The one text to `phone` since `since`, checked for what every text must be. */
      async function theText(phone: string, since: number): Promise<ReceivedSms> {
        const text = await receiver.next(phone, { since });
        assertGenuine(text, phone);
        assert.equal(textsTo(phone, since).length, 1, 'exactly one text');
        return text;
      }

      function assertGenuine(m: ReceivedSms, phone: string) {
        assert.equal(m.provider, provider);
        assert.equal(m.to, phone, 'sent to the E.164 number');
        assert.ok(m.authentic, provider === 'webhook' ? 'the webhook signature verifies with the shared secret' : 'Twilio credentials are right');
        assert.match(m.code, /^\d{6}$/, 'a 6-digit code first');
        assert.equal(m.text.split('\n').at(-1), `@localhost #${m.code}`, 'the WebOTP line last, bound to the issuer\'s host');
        if (provider === 'twilio') {
          assert.equal(m.headers.authorization, `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`);
          const form = new URLSearchParams(m.raw);
          assert.equal(form.get('To'), phone);
          assert.equal(form.get('From'), TWILIO_FROM);
        } else {
          assert.match(String(m.headers['x-latchkey-signature']), /^t=\d+,v1=[0-9a-f]{64}$/);
          assert.deepEqual(Object.keys(JSON.parse(m.raw) as object).sort(), ['text', 'to']);
        }
      }

      /** The code is on the pending step only as a keyed hash of the code, the number and a nonce. */
      function assertHashedOnly(data: Record<string, unknown>, code: string, phone: string) {
        assert.doesNotMatch(JSON.stringify(data), standalone(code), 'the code itself is not stored');
        assert.equal(data.phone, phone);
        assert.equal(typeof data.codeHash, 'string');
        assert.ok(codeHasher(server.config.secrets.encryptionKey).matches(code, `sms:${phone}:${String(data.nonce)}`, data.codeHash), 'a hash of this code');
      }

      const verifyAction = (uid: string) => `/interaction/${uid}/verify`;
      const enterCode = (browser: CookieClient, page: Page, uid: string, code: string) => post(browser, page, verifyAction(uid), { code });
      const askAgain = (browser: CookieClient, page: Page, uid: string) => post(browser, page, `${verifyAction(uid)}/resend`);

      const isSmsPage = (page: Page) => /Enter the 6-digit code we sent to/.test(page.body);

      /** Consent if asked, then the app's callback: the ID token's claims. */
      async function atApp(browser: CookieClient, page: Page & { stoppedAt?: string }, checks: Awaited<ReturnType<RelyingParty['authorization']>>['checks']) {
        let p = page;
        if (!p.stoppedAt) {
          assert.match(p.body, /\/confirm"/, `consent expected, got ${p.status} at ${p.url}: ${p.body.slice(0, 300)}`);
          p = await browser.submit(p, '/confirm');
        }
        assert.ok(p.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${p.status} at ${p.url}`);
        const claims = (await rp.callback(p.stoppedAt!, checks)).claims()!;
        return { acr: claims.acr, amr: (claims.amr ?? []) as string[] };
      }

      /** The browser holds no session: prompt=none answers login_required, never a code. */
      async function assertNotSignedIn(browser: CookieClient) {
        const page = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
        assert.ok(page.stoppedAt, `prompt=none answers at the redirect URI, got ${page.status} at ${page.url}`);
        const params = new URL(page.stoppedAt).searchParams;
        assert.equal(params.get('error'), 'login_required');
        assert.equal(params.get('code'), null);
      }

      describe('adding a phone on the account page', () => {
        /** A user signed in to the account page with the security question every other method needs. */
        async function readyToAddPhone() {
          const user = await newUser();
          const browser = new CookieClient(server.url);
          await signInToAccount(browser, user);
          await addQuestion(store(), (s) => server.server.services.hasher.hash(s), user.id);
          const page = await browser.follow('/account/two-step/sms');
          assert.equal(page.status, 200, `the phone form, got ${page.status} at ${page.url}`);
          assert.match(page.body, /name="phone"/);
          return { user, browser, page };
        }
        const smsMethods = async (userId: string) => (await store().authenticators.listForUser(userId)).filter((a) => a.kind === 'sms');

        it('refuses a number that is not a valid international mobile number: 400, nothing stored, no text sent', async () => {
          const { user, browser, page } = await readyToAddPhone();
          const since = receiver.messages.length;
          let form = page;
          for (const phone of ['not a phone', '+44 20 7946 0958', '07911 123456', '7911123456', '+44 7911 12345', '+1 555 0100', '']) {
            const refused = await post(browser, form, '/account/two-step/sms', { phone });
            assert.equal(refused.status, 400, `refused: "${phone}"`);
            assert.match(refused.body, /Enter a valid mobile number in international format/, `the message for "${phone}"`);
            assert.match(refused.body, /name="phone"/, 'the phone form again');
            form = refused;
          }
          assert.deepEqual(await smsMethods(user.id), []);
          assert.equal(receiver.messages.length, since, 'no text to anyone');
          const pending = await knex()('pending_steps').where({ user_id: user.id });
          assert.ok(pending.every((p: { data: Record<string, unknown> }) => p.data.stage === 'phone' && !('codeHash' in p.data)), 'no code was made');
        });

        it('stores a number written in any spacing, as E.164, only once the code texted to it is entered; a wrong code refuses', async () => {
          const { user, browser, page } = await readyToAddPhone();
          const since = receiver.messages.length;
          const spaced = `  +44 (7911) ${user.phone.slice(7, 10)}-${user.phone.slice(10)} `;
          const codePage = await post(browser, page, '/account/two-step/sms', { phone: spaced });
          assert.equal(codePage.status, 200, codePage.body.slice(0, 400));
          assert.ok(isSmsPage(codePage), 'asks for the code');
          assert.ok(!codePage.body.includes(user.phone.slice(3)), 'the code page shows the number masked');
          const text = await theText(user.phone, since);
          assert.deepEqual(await smsMethods(user.id), [], 'not stored before the code');
          const [pending] = await knex()('pending_steps').where({ user_id: user.id, kind: 'sms' });
          assertHashedOnly(pending.data, text.code, user.phone);
          assert.equal(pending.secret_sealed, null);

          const wrong = await post(browser, codePage, '/account/two-step/sms', { code: otherThan(text.code) });
          assert.equal(wrong.status, 400);
          assert.match(wrong.body, /That code is not right\./);
          assert.deepEqual(await smsMethods(user.id), [], 'a wrong code stores nothing');

          const done = await post(browser, wrong, '/account/two-step/sms', { code: text.code });
          assert.equal(done.status, 200, done.body.slice(0, 400));
          assert.equal(recoveryCodesOn(done).length, 10, 'the first possession method comes with recovery codes, shown once');
          const [phone, ...more] = await smsMethods(user.id);
          assert.equal(more.length, 0);
          assert.deepEqual(phone!.data, { phone: user.phone }, 'kept as E.164');
          assert.equal(phone!.label, `+44${'•'.repeat(user.phone.length - 5)}${user.phone.slice(-2)}`, 'named by its masked form');
          assert.equal(textsTo(user.phone, since).length, 1, 'one text for the whole enrolment');

          const security = await browser.follow('/account/security');
          assert.equal(security.status, 200);
          assert.ok(security.body.includes(phone!.label), 'the list shows the masked number');
          for (const shown of [user.phone, user.phone.slice(3), `7911 ${user.phone.slice(7)}`, user.phone.slice(5, 11)]) {
            assert.ok(!security.body.includes(shown), `the full number never shows (${shown})`);
          }
        });

        it('can send a new code to the number being added (not within the interval), and go back to use another number', async () => {
          const { user, browser, page } = await readyToAddPhone();
          const since = receiver.messages.length;
          const codePage = await post(browser, page, '/account/two-step/sms', { phone: user.phone });
          const first = await theText(user.phone, since);
          assert.match(codePage.body, /id="sms-resend"/);
          assert.match(codePage.body, /id="sms-change-number"[^>]*>Use another number</);

          const soon = await post(browser, codePage, '/account/two-step/sms', { resend: '1' });
          assert.equal(soon.status, 400);
          assert.match(soon.body, /A code was sent just now\. Wait 10 seconds/);
          assert.equal(textsTo(user.phone, since).length, 1, 'no second text inside the interval');

          // The interval over (its counter cleared rather than waited for): a new code, and the first one is dead.
          await knex()('counters').where({ key: `sms:interval:${user.id}` }).delete();
          const before = receiver.messages.length;
          const fresh = await post(browser, soon, '/account/two-step/sms', { resend: '1' });
          assert.equal(fresh.status, 200, fresh.body.slice(0, 300));
          const second = await theText(user.phone, before);
          let last = fresh;
          if (first.code !== second.code) {
            last = await post(browser, fresh, '/account/two-step/sms', { code: first.code });
            assert.equal(last.status, 400);
            assert.deepEqual(await smsMethods(user.id), [], 'the first code adds nothing');
          }
          const done = await browser.submit(last, '/account/two-step/sms', { code: second.code });
          assert.equal(done.status, 200, done.body.slice(0, 300));
          assert.equal((await smsMethods(user.id)).length, 1);

          // "Use another number" starts again at the phone form.
          const again = await readyToAddPhone();
          const other = await post(again.browser, again.page, '/account/two-step/sms', { phone: again.user.phone });
          const back = await again.browser.follow(/id="sms-change-number"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*id="sms-change-number"/.exec(other.body)!.slice(1).find(Boolean)!);
          assert.match(back.body, /name="phone"/);
        });
      });

      describe('signing in', () => {
        it('signs in with the texted code at acr_values=mfa: acr mfa, amr pwd sms mfa', async () => {
          const user = await userWithPhone();
          const { browser, req, page, uid, since } = await passwordDone(user);
          assert.equal(page.status, 200);
          assert.ok(isSmsPage(page), 'the phone is the only method: its code form');
          assert.ok(!page.body.includes(user.phone.slice(3)), 'the number shows masked');
          const text = await theText(user.phone, since);
          const [pending, ...others] = await pendingRows(uid);
          assert.equal(others.length, 0);
          assertHashedOnly(pending.data, text.code, user.phone);
          assert.equal(pending.attempts_left, 3);
          const lifetime = (new Date(pending.expires_at).getTime() - new Date(pending.created_at).getTime()) / 1000;
          assert.ok(Math.abs(lifetime - 300) < 2, `the code lives 300 s (${lifetime})`);

          const claims = await atApp(browser, await enterCode(browser, page, uid, text.code), req.checks);
          assert.equal(claims.acr, MFA);
          assert.deepEqual(new Set(claims.amr), new Set(['pwd', 'sms', 'mfa']));
          assert.equal(claims.amr.length, 3);
          assert.deepEqual(await pendingRows(uid), [], 'nothing left pending');
        });

        it('never opens on SMS when the user has an authenticator app, even when the phone was used last; SMS is under "Try another way"', async () => {
          const user = await userWithPhone();
          await addTotp(store(), user.id, 'Work phone');
          await store().authenticators.markUsed(user.smsId);
          const { browser, req, page, uid, since } = await passwordDone(user);
          assert.equal(page.status, 200);
          assert.match(page.body, /Enter the 6-digit code from Work phone/, 'the authenticator app first');
          assert.ok(!isSmsPage(page));
          assert.equal(textsTo(user.phone, since).length, 0, 'no text sent while the app is asked for');
          assert.match(page.body, new RegExp(`href="/interaction/${uid}/verify/methods"`), 'Try another way');

          const methods = await browser.follow(`/interaction/${uid}/verify/methods`);
          const link = `/interaction/${uid}/verify?method=${user.smsId}`;
          assert.ok(methods.body.includes(`href="${link}"`), 'SMS is offered there');
          assert.match(methods.body, /Text a code to/);
          const smsPage = await browser.follow(link);
          assert.ok(isSmsPage(smsPage));
          const text = await theText(user.phone, since);
          const claims = await atApp(browser, await enterCode(browser, smsPage, uid, text.code), req.checks);
          assert.equal(claims.acr, MFA);
          assert.ok(claims.amr.includes('sms') && !claims.amr.includes('otp'));
        });
      });

      describe('expiry', () => {
        it('refuses the right code once it has expired, and grants nothing', async () => {
          const user = await userWithPhone();
          const { browser, page, uid, since } = await passwordDone(user);
          const text = await theText(user.phone, since);
          assert.equal(await pendingRows(uid).update({ expires_at: new Date(Date.now() - 1000) }), 1);
          const refused = await enterCode(browser, page, uid, text.code);
          assert.equal(refused.status, 400);
          assert.equal(refused.stoppedAt, undefined, 'not back at the app');
          assert.match(refused.body, /That took too long or was already used/);
          assert.ok(!isSmsPage(refused), 'the list of methods, not the code form');
          await assertNotSignedIn(browser);
          assert.equal((await store().events.forUser(user.id)).filter((e) => e.type === 'two_step.verified').length, 0);
        });
      });

      describe('a new code', () => {
        it('is refused within the resend interval: 429 with the reason, no text sent, and the code already sent still works', async () => {
          const user = await userWithPhone();
          const { browser, req, page, uid, since } = await passwordDone(user);
          const text = await theText(user.phone, since);
          const refused = await askAgain(browser, page, uid);
          assert.equal(refused.status, 429);
          assert.match(refused.body, new RegExp(`A code was sent just now\\. Wait ${RESEND_SECONDS} seconds before asking for another one\\.`));
          assert.equal(refused.stoppedAt, undefined);
          await sleep(100);
          assert.equal(textsTo(user.phone, since).length, 1, 'no second text');
          await assertNotSignedIn(new CookieClient(server.url));
          // The refusal says to wait: the code that was sent is the one to type meanwhile.
          const again = await browser.follow(verifyAction(uid));
          assert.ok(isSmsPage(again), 'the code form, for the code already sent');
          assert.equal(textsTo(user.phone, since).length, 1, 'still no second text');
          const claims = await atApp(browser, await enterCode(browser, page, uid, text.code), req.checks);
          assert.equal(claims.acr, MFA);
        });

        it(`arrives after the interval (${RESEND_SECONDS} s, waited for), and the old code stops working`, async () => {
          const user = await userWithPhone();
          const { browser, req, page, uid, since } = await passwordDone(user);
          const first = await theText(user.phone, since);
          await sleep(RESEND_SECONDS * 1000 + 200);
          const before = receiver.messages.length;
          const fresh = await askAgain(browser, page, uid);
          assert.equal(fresh.status, 200, fresh.body.slice(0, 300));
          assert.ok(isSmsPage(fresh));
          const second = await theText(user.phone, before);
          assert.notEqual(formFields(fresh, verifyAction(uid)).pending, formFields(page, verifyAction(uid)).pending, 'a new challenge');

          const old = await enterCode(browser, page, uid, first.code);
          assert.equal(old.status, 400, 'the first challenge is gone');
          assert.equal(old.stoppedAt, undefined);
          if (first.code !== second.code) {
            const stale = await enterCode(browser, fresh, uid, first.code);
            assert.equal(stale.status, 401, 'the old code is wrong for the new challenge');
            assert.match(stale.body, /That code is not right\./);
            const claims = await atApp(browser, await enterCode(browser, stale, uid, second.code), req.checks);
            assert.equal(claims.acr, MFA);
          }
        });

        it('is refused after 5 texts in an hour (maxPerHour), whatever the interval', async () => {
          const user = await userWithPhone();
          const { browser, page, uid, since } = await passwordDone(user);
          await theText(user.phone, since);
          let current = page;
          for (let sent = 1; sent < 5; sent++) {
            await endResendInterval(user.id);
            current = await askAgain(browser, current, uid);
            assert.equal(current.status, 200, `text ${sent + 1} is sent`);
          }
          assert.equal(textsTo(user.phone, since).length, 5);
          await endResendInterval(user.id);
          const refused = await askAgain(browser, current, uid);
          assert.equal(refused.status, 429);
          assert.match(refused.body, /Too many codes were sent to your phone\. Try again in an hour, or use another way\./);
          await sleep(100);
          assert.equal(textsTo(user.phone, since).length, 5, 'no sixth text');
          // Nor through another sign-in: the limit is the account's.
          await endResendInterval(user.id);
          const other = await passwordDone(user);
          assert.equal(other.page.status, 429);
          assert.match(other.page.body, /Too many codes were sent to your phone/);
          assert.equal(textsTo(user.phone, since).length, 5);
        });

        it('never resets the shared failure counter', async () => {
          const user = await userWithPhone();
          const browser0 = new CookieClient(server.url);
          const login = await browser0.follow((await rp.authorization()).url);
          assert.equal((await browser0.submit(login, '/login', { email: user.email, password: 'not the password at all' })).status, 401);
          const { browser, req, page, uid, since } = await passwordDone(user);
          assert.equal(await failures(user.email), 1, 'the right password alone does not reset it');
          const first = await theText(user.phone, since);
          const wrong = await enterCode(browser, page, uid, otherThan(first.code));
          assert.equal(wrong.status, 401);
          assert.equal(await failures(user.email), 2);

          await endResendInterval(user.id);
          const before = receiver.messages.length;
          const fresh = await askAgain(browser, wrong, uid);
          assert.ok(isSmsPage(fresh));
          const second = await theText(user.phone, before);
          assert.equal(await failures(user.email), 2, 'a new code leaves the counter as it was');
          const wrongAgain = await enterCode(browser, fresh, uid, otherThan(second.code));
          assert.equal(wrongAgain.status, 401);
          assert.equal(await failures(user.email), 3, 'and it keeps growing');

          const claims = await atApp(browser, await enterCode(browser, wrongAgain, uid, second.code), req.checks);
          assert.equal(claims.acr, MFA);
          assert.equal(await failures(user.email), 0, 'only a completed sign-in clears it');
        });
      });

      describe('single use', () => {
        it('accepts a code once, in the sign-in it was sent for: not in another sign-in, not twice', async () => {
          const user = await userWithPhone();
          const mine = await passwordDone(user);
          const code = (await theText(user.phone, mine.since)).code;
          const fields: Record<string, string> = { ...formFields(mine.page, verifyAction(mine.uid)), code };
          // Another sign-in of the same account, with its own code, at the same time.
          await endResendInterval(user.id);
          const other = await passwordDone(user);
          const otherCode = (await theText(user.phone, other.since)).code;
          const foreign = await other.browser.follow(verifyAction(other.uid), {
            form: { ...formFields(other.page, verifyAction(other.uid)), pending: fields.pending!, code },
          });
          assert.equal(foreign.status, 400, 'the first sign-in\'s challenge is not found in the second one');
          assert.equal(foreign.stoppedAt, undefined);
          if (otherCode !== code) {
            const reused = await enterCode(other.browser, other.page, other.uid, code);
            assert.equal(reused.status, 401, 'the first sign-in\'s code is wrong for the second one');
          }
          await assertNotSignedIn(other.browser);

          const claims = await atApp(mine.browser, await mine.browser.follow(verifyAction(mine.uid), { form: fields }), mine.req.checks);
          assert.equal(claims.acr, MFA, 'the code still works where it was sent');
          const replay = await mine.browser.request(verifyAction(mine.uid), { form: fields });
          assert.ok(replay.status >= 400, `the same answer again is refused (${replay.status} ${replay.headers.get('location')})`);
          assert.equal((await store().events.forUser(user.id)).filter((e) => e.type === 'two_step.verified').length, 1);
        });

        it('gives exactly one success to 20 parallel submissions of the right code for one challenge', async () => {
          const user = await userWithPhone();
          const { browser, req, page, uid, since } = await passwordDone(user);
          const text = await theText(user.phone, since);
          const fields = { ...formFields(page, verifyAction(uid)), code: text.code };
          const answers = await Promise.all(Array.from({ length: 20 }, () => browser.request(verifyAction(uid), { form: fields })));
          const granted = answers.filter((a) => a.status === 303 && /\/auth\//.test(a.headers.get('location') ?? ''));
          assert.equal(granted.length, 1, answers.map((a) => `${a.status} ${a.headers.get('location') ?? ''}`).join(', '));
          for (const a of answers) if (a !== granted[0]) assert.ok(a.status === 400 || (a.status === 303 && a.headers.get('location') === `/interaction/${uid}`), `a loser: ${a.status}`);
          const claims = await atApp(browser, await browser.follow(granted[0]!.headers.get('location')!), req.checks);
          assert.equal(claims.acr, MFA);
          assert.equal((await store().events.forUser(user.id)).filter((e) => e.type === 'two_step.verified').length, 1);
        });

        it('kills the challenge after 3 wrong codes: the right code is refused after them', async () => {
          const user = await userWithPhone();
          const { browser, page, uid, since } = await passwordDone(user);
          const text = await theText(user.phone, since);
          const first = await enterCode(browser, page, uid, otherThan(text.code));
          assert.equal(first.status, 401);
          assert.match(first.body, /That code is not right\./);
          const second = await enterCode(browser, first, uid, otherThan(otherThan(text.code)));
          assert.equal(second.status, 401);
          const third = await enterCode(browser, second, uid, otherThan(otherThan(otherThan(text.code))));
          assert.equal(third.status, 400);
          assert.match(third.body, /Too many wrong answers for this request/);
          assert.equal(await failures(user.email), 3, 'each wrong code counted');
          const late = await browser.follow(verifyAction(uid), { form: { ...formFields(second, verifyAction(uid)), code: text.code } });
          assert.equal(late.status, 400);
          assert.equal(late.stoppedAt, undefined);
          assert.deepEqual(await pendingRows(uid), [], 'nothing left to answer');
          await assertNotSignedIn(browser);
        });
      });

      for (const mode of ['error', 'hang'] as const) {
        it(`says so when the provider ${mode === 'error' ? 'answers with an error' : 'does not answer in time'}, offers the other methods, lets nothing through, and works once it is back`, async () => {
          const alice = await userWithPhone();
          await addRecoveryCodes(store(), alice.id);
          const bob = await userWithPhone();
          await addTotp(store(), bob.id, 'Tablet');
          receiver.mode = mode;
          try {
            const started = Date.now();
            const { browser, req, page, uid } = await passwordDone(alice);
            assert.equal(page.status, 503);
            assert.match(page.body, providerDown);
            assert.ok(!isSmsPage(page), 'no code form for a code that was not sent');
            assert.match(page.body, /Use a recovery code/, 'another method is offered');
            assert.ok(!page.body.includes(`?method=${alice.smsId}"`), 'the phone is shown as not available now');
            if (mode === 'hang') assert.ok(Date.now() - started < 5000, 'the timeout fired');
            await assertNotSignedIn(browser);

            const other = await passwordDone(bob);
            assert.match(other.page.body, /Enter the 6-digit code from Tablet/);
            const chosen = await other.browser.follow(`${verifyAction(other.uid)}?method=${bob.smsId}`);
            assert.equal(chosen.status, 503);
            assert.match(chosen.body, providerDown);
            assert.match(chosen.body, /Use your authenticator app \(Tablet\)/);
            await assertNotSignedIn(other.browser);
            assert.equal(receiver.messages.filter((m) => m.to === alice.phone || m.to === bob.phone).length, 0);

            receiver.mode = 'ok';
            // The failed attempt took the interval's one text; skip the wait.
            await endResendInterval(alice.id);
            const since = receiver.messages.length;
            const again = await browser.follow(verifyAction(uid));
            assert.equal(again.status, 200);
            assert.ok(isSmsPage(again));
            const text = await theText(alice.phone, since);
            const claims = await atApp(browser, await enterCode(browser, again, uid, text.code), req.checks);
            assert.equal(claims.acr, MFA);
            assert.ok(claims.amr.includes('sms'));
          } finally {
            receiver.mode = 'ok';
          }
        });
      }

      it('counts wrong codes and wrong passwords on one failure counter: the delays, then the lock', async () => {
        const user = await userWithPhone();
        for (let i = 0; i < 4; i++) {
          const b = new CookieClient(server.url);
          const login = await b.follow((await rp.authorization()).url);
          assert.equal((await b.submit(login, '/login', { email: user.email, password: `wrong password ${i}` })).status, 401);
        }
        const { browser, page, uid, since } = await passwordDone(user);
        const text = await theText(user.phone, since);
        const wrong = await enterCode(browser, page, uid, otherThan(text.code));
        assert.equal(wrong.status, 401);
        assert.equal(await failures(user.email), 5, '4 passwords and 1 code on the same counter');
        // 5 failures: the next attempt waits, even with the right code, and so does a password elsewhere.
        const throttled = await enterCode(browser, wrong, uid, text.code);
        assert.equal(throttled.status, 429);
        assert.match(throttled.body, /Too many failed attempts\. Wait (?:1 second|(?!1 )\d+ seconds) and try again\./);
        assert.ok(Number(throttled.headers.get('retry-after')) >= 1);
        assert.equal(throttled.stoppedAt, undefined);
        assert.equal(await failures(user.email), 5, 'a throttled answer is not checked');

        // Long ago, 99 failures; one more wrong code locks the account, for the code and the password alike.
        await knex()('counters').where({ key: accountKey(user.email) }).update({ count: 99, updated_at: new Date(Date.now() - 3600_000) });
        const last = await enterCode(browser, throttled, uid, otherThan(text.code));
        assert.equal(last.status, 401, 'the throttled answer did not spend an attempt');
        assert.equal(await failures(user.email), 100);
        const lockedCode = await enterCode(browser, last, uid, text.code);
        assert.equal(lockedCode.status, 429, 'not even the right code');
        assert.match(lockedCode.body, /Reset your password by email/);
        const fresh = new CookieClient(server.url);
        const login = await fresh.follow((await rp.authorization()).url);
        const locked = await fresh.submit(login, '/login', { email: user.email, password: user.password });
        assert.equal(locked.status, 429);
        assert.match(locked.body, /Reset your password by email/);
        await assertNotSignedIn(browser);
        await assertNotSignedIn(fresh);
      });

      it('keeps the codes, the webhook secret and the Twilio token out of a debug-level log', async () => {
        const user = await userWithPhone();
        const { browser, req, page, uid, since } = await passwordDone(user);
        const first = await theText(user.phone, since);
        const wrong = await enterCode(browser, page, uid, otherThan(first.code));
        await endResendInterval(user.id);
        const before = receiver.messages.length;
        const fresh = await askAgain(browser, wrong, uid);
        const second = await theText(user.phone, before);
        await atApp(browser, await enterCode(browser, fresh, uid, second.code), req.checks);

        const log = server.logText();
        assert.match(log, /"level":20/, 'debug lines were written');
        assert.ok(receiver.messages.length >= 2);
        for (const m of receiver.messages) {
          const at = log.search(standalone(m.code));
          assert.equal(at, -1, `a code appeared in the log: ${log.slice(Math.max(0, at - 200), at + 50)}`);
          const signature = /v1=([0-9a-f]{64})/.exec(String(m.headers['x-latchkey-signature'] ?? ''))?.[1];
          if (signature) assert.ok(!log.includes(signature), 'a webhook signature appeared in the log');
        }
        const basic = Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64');
        for (const secret of [WEBHOOK_SECRET, TWILIO_TOKEN, basic, user.password, server.config.secrets.encryptionKey]) {
          assert.ok(!log.includes(secret), `a secret (${secret.slice(0, 6)}…) appeared in the log`);
        }
        assert.ok(!log.includes(user.phone), 'phone numbers are masked in the log');
      });
    });
  }
});
