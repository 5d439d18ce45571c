/**
 * Security keys at the HTTP level, with responses crafted by the test (a software authenticator written from
 * the WebAuthn spec, reporting a cross-platform attachment): enrolment from the key's own card, the second
 * step with and without user verification (a key without a PIN proves `hwk`, never `user`), signing in
 * without a password (only with user verification), and the attacks: another user's credential, a
 * credential of the other kind (a platform passkey), a key without user verification alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm, optionsIn, type Page } from '../helpers/browser.ts';
import { responseParams } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { addQuestion, recoveryCodesOn, throughToApp, type Person } from '../helpers/two-step.ts';
import {
  addPasskey, FLAGS, SoftPasskey, userHandleOf,
  type AssertionJSON, type CreationOptions, type RequestOptions,
} from '../helpers/webauthn.ts';

const MFA = 'urn:latchkey:acr:mfa';
const PHR = 'phr';
const REDIRECT = 'http://localhost:9999/cb';
const KEY_CARD = '/account/two-step/security-key';
const PASSKEY_CARD = '/account/two-step/webauthn';
const KEY: { attachment: string; transports: string[] } = { attachment: 'cross-platform', transports: ['usb'] };
/** A key that does not verify its user (no PIN): presence only. */
const NO_PIN = { flags: FLAGS.UP } as const;
const KEY_NOT_KNOWN = /That security key is not set up for this account\./;

type Browsed = Page & { stoppedAt?: string };

/** The HTML of one method's card on "Password & security". */
function card(page: Page, kind: string): string {
  const html = new RegExp(`<section class="method[^"]*" id="method-${kind}"[\\s\\S]*?</section>`).exec(page.body)?.[0];
  assert.ok(html, `the ${kind} card`);
  return html;
}

describe('security keys at the HTTP level, with responses crafted by the test', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;
  let users = 0;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
  });
  after(async () => {
    await server?.stop();
    await mailbox?.stop();
  });

  const store = () => server.server.services.store;
  const knex = () => server.server.services.database.knex;
  const ofKind = async (userId: string, kind: string) => (await store().authenticators.listForUser(userId)).filter((a) => a.kind === kind);
  const softKey = (init: Partial<ConstructorParameters<typeof SoftPasskey>[0]> = {}) => new SoftPasskey({ origin: server.url, ...init });

  async function newUser(): Promise<Person> {
    const n = ++users;
    const person = { email: `key${n}@example.com`, password: `key user ${n} long password`, answer: 'rex the dog' };
    const user = await server.addUser(person);
    await addQuestion(store(), (s) => server.server.services.hasher.hash(s), user.id, person.answer);
    return { ...person, id: user.id };
  }

  /** A user with a security key put straight into the store. */
  async function userWithKey() {
    const user = await newUser();
    const key = softKey();
    const { id } = await addPasskey(store(), user.id, key, { label: 'YubiKey', kind: 'security-key' });
    return { user, key, authenticatorId: id };
  }

  async function events(userId: string, type: string): Promise<Record<string, unknown>[]> {
    const rows = await knex()('security_events').where({ user_id: userId, type }).orderBy('id').select('details');
    return rows.map((r: { details: unknown }) => (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>);
  }

  /** Signs in to the account page in a fresh browser: the password, then the question a new device is asked. */
  async function accountBrowser(user: Person): Promise<CookieClient> {
    const browser = new CookieClient(server.url);
    const login = await browser.follow('/account');
    const question = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.match(question.body, /name="answer"/, `the question for a new device, got ${question.status} at ${question.url}`);
    const page = await browser.submit(question, '/verify', { answer: user.answer });
    assert.equal(new URL(page.url).pathname, '/account');
    return browser;
  }

  async function enrolPage(browser: CookieClient, action = KEY_CARD) {
    const page = await browser.follow(action);
    assert.equal(page.status, 200, `the enrolment page, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
    return { page, options: optionsIn<CreationOptions>(page, action) };
  }

  /** The password with the app asking for `acr`: the second step's page. */
  async function secondStep(user: Person, browser = new CookieClient(server.url), acr = MFA, capability?: 'capable' | 'incapable') {
    const req = await rp.authorization({ scope: 'openid', acr_values: acr, prompt: 'login' });
    const login = await browser.follow(req.url);
    const page = await browser.submit(login, '/login', { email: user.email, password: user.password, ...(capability ? { passkey: capability } : {}) });
    assert.equal(page.status, 200, `the second step, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
    assert.match(new URL(page.url).pathname, /^\/interaction\/[^/]+\/verify$/);
    return { browser, req, page };
  }
  const verifyWith = (browser: CookieClient, page: Page, credential: AssertionJSON) =>
    browser.submit(page, '/verify', { credential: JSON.stringify(credential) });

  /** The sign-in page's passwordless challenge, asked for as its script does. */
  async function passwordlessStart(browser: CookieClient) {
    const req = await rp.authorization({ scope: 'openid' });
    const login = await browser.follow(req.url);
    const form = findForm(login.body, '/passkey');
    const action = new URL(form.action, login.url).toString();
    const res = await browser.request(`${action}/options`, { form: { csrf: form.hidden.csrf! }, headers: { accept: 'application/json' } });
    assert.equal(res.status, 200, res.body.slice(0, 300));
    const { pending, options } = JSON.parse(res.body) as { pending: string; options: RequestOptions };
    return { req, action, csrf: form.hidden.csrf!, pending, options };
  }
  const passwordlessAnswer = (browser: CookieClient, start: { action: string; csrf: string; pending: string }, credential: AssertionJSON) =>
    browser.follow(start.action, { form: { csrf: start.csrf, pending: start.pending, credential: JSON.stringify(credential) } });

  /** Refused on the page (4xx, the message), not sent on to the app. */
  function refused(page: Browsed, message: RegExp) {
    assert.ok(page.status >= 400 && page.status < 500, `refused, got ${page.status} at ${page.url}`);
    assert.equal(page.stoppedAt, undefined, 'not sent back to the app');
    assert.match(page.body, message);
  }
  /** The browser holds no session: a silent request gives login_required, never a code. */
  async function nothingGranted(browser: CookieClient) {
    const page = await browser.follow((await rp.authorization({ scope: 'openid', prompt: 'none' })).url);
    const params = responseParams(page.stoppedAt!);
    assert.equal(params.get('error'), 'login_required');
    assert.equal(params.get('code'), null);
  }

  describe('adding one from its own card', () => {
    it('asks for a cross-platform authenticator (resident key and user verification preferred), stores a key with its name, recovery codes and a mail', async () => {
      const user = await newUser();
      const browser = await accountBrowser(user);
      const { page, options } = await enrolPage(browser);
      assert.deepEqual(options.authenticatorSelection, { authenticatorAttachment: 'cross-platform', residentKey: 'preferred', requireResidentKey: false, userVerification: 'preferred' });
      assert.deepEqual(options.hints, ['security-key'], 'the browser goes straight to its security key prompt');
      assert.equal(options.user.id, userHandleOf(user.id));
      assert.equal(options.attestation, 'none');

      const since = mailbox.messages.length;
      // A key without a PIN: user presence only. A key needs no user verification to be added.
      const key = softKey();
      const done = await browser.submit(page, KEY_CARD, { credential: JSON.stringify(key.register(options, { ...KEY, flags: FLAGS.UP | FLAGS.AT })), label: 'Keyring YubiKey' });
      assert.equal(done.status, 200, done.body.slice(0, 300));
      assert.equal(recoveryCodesOn(done).length, 10, 'the first possession method comes with recovery codes');
      const [stored] = await ofKind(user.id, 'security-key');
      assert.ok(stored);
      assert.equal(stored.label, 'Keyring YubiKey');
      assert.equal(stored.externalId, key.id);
      assert.deepEqual(stored.data, { counter: 0, transports: ['usb'], backupEligible: false, backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000' }, 'no device remembered: a key goes everywhere');
      assert.deepEqual(await ofKind(user.id, 'webauthn'), [], 'not a passkey');
      assert.equal((await events(user.id, 'two_step.added'))[0]?.kind, 'security-key');
      const mail = await mailbox.next(user.email, { since });
      assert.match(mail.text, /Security key added \(Keyring YubiKey\)/);

      // A second key: the first is excluded; an unnamed one is called "Security key".
      const second = await enrolPage(browser);
      assert.deepEqual(second.options.excludeCredentials, [{ id: key.id, type: 'public-key', transports: ['usb'] }]);
      const spare = softKey();
      assert.equal((await browser.submit(second.page, KEY_CARD, { credential: JSON.stringify(spare.register(second.options, KEY)) })).status, 200);
      assert.deepEqual((await ofKind(user.id, 'security-key')).map((a) => a.label), ['Keyring YubiKey', 'Security key']);
    });

    it('refuses a platform authenticator on the key card, and a key on the passkey card: each card takes its own kind, the server decides', async () => {
      const user = await newUser();
      const browser = await accountBrowser(user);
      let { page, options } = await enrolPage(browser);
      for (const [what, attachment] of [['a platform passkey', 'platform'], ['no attachment reported', null]] as const) {
        const answer = await browser.submit(page, KEY_CARD, { credential: JSON.stringify(softKey().register(options, { attachment })) });
        assert.equal(answer.status, 400, what);
        assert.match(answer.body, /Use a security key \(not this device&#39;s own face, fingerprint or screen lock\)\./, what);
        ({ page } = { page: answer });
        options = optionsIn<CreationOptions>(answer, KEY_CARD);
      }
      assert.deepEqual(await store().authenticators.listForUser(user.id).then((all) => all.filter((a) => a.kind !== 'security-question')), [], 'nothing stored');

      const passkeyCard = await enrolPage(browser, PASSKEY_CARD);
      const onPasskeyCard = await browser.submit(passkeyCard.page, PASSKEY_CARD, { credential: JSON.stringify(softKey().register(passkeyCard.options, KEY)) });
      assert.equal(onPasskeyCard.status, 400);
      assert.match(onPasskeyCard.body, /not a security key or another device/);
      assert.deepEqual(await ofKind(user.id, 'webauthn'), []);
    });

    it('lists keys on the key card and passkeys on the passkey card, never one on the other', async () => {
      const user = await newUser();
      const browser = await accountBrowser(user);
      await addPasskey(store(), user.id, softKey(), { label: 'Work laptop' });
      await addPasskey(store(), user.id, softKey(), { label: 'Keyring YubiKey', kind: 'security-key' });
      const page = await browser.follow('/account/security');
      const keys = card(page, 'security-key');
      const passkeys = card(page, 'webauthn');
      assert.match(keys, /Keyring YubiKey/);
      assert.doesNotMatch(keys, /Work laptop/);
      assert.match(passkeys, /Work laptop/);
      assert.doesNotMatch(passkeys, /Keyring YubiKey/);
      assert.ok(page.body.indexOf('id="method-webauthn"') < page.body.indexOf('id="method-security-key"'), 'the passkey card first, then the key card');
      assert.match(keys, /Strongest/, 'a key reaches the top level with the password');
    });
  });

  describe('as the second step after the password', () => {
    it('opens on the key with a challenge for the keys only (user verification preferred): with its PIN acr phr, amr pwd+hwk+user+mfa', async () => {
      const { user, key, authenticatorId } = await userWithKey();
      await addPasskey(store(), user.id, softKey(), { label: 'Laptop' });
      // The last used method opens first: the key.
      await store().authenticators.markUsed(authenticatorId);
      const { browser, req, page } = await secondStep(user);
      assert.match(page.body, /id="security-key-assert"/, 'the key form');
      assert.match(page.body, /Use your security key/);
      const options = optionsIn<RequestOptions>(page, '/verify');
      assert.deepEqual(options.allowCredentials?.map((c) => c.id), [key.id], 'only the keys, not the passkey');
      assert.equal(options.userVerification, 'preferred');
      assert.deepEqual(options.hints, ['security-key']);
      const claims = await throughToApp(browser, await verifyWith(browser, page, key.assert(options, { attachment: 'cross-platform' })), rp, req.checks);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'user', 'mfa']));
      assert.equal((await events(user.id, 'two_step.verified'))[0]?.kind, 'security-key');
    });

    it('gives no `user` for a key that did not verify its user: acr phr (the key is phishing-resistant), amr pwd+hwk+mfa', async () => {
      const { user, key } = await userWithKey();
      const { browser, req, page } = await secondStep(user, undefined, PHR);
      const options = optionsIn<RequestOptions>(page, '/verify');
      const claims = await throughToApp(browser, await verifyWith(browser, page, key.assert(options, { ...NO_PIN, attachment: 'cross-platform' })), rp, req.checks);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'mfa']));
    });

    it("refuses another user's key answering this user's challenge, and keeps the sign-in powerless", async () => {
      const { user: alice } = await userWithKey();
      const { user: bob, key: bobsKey } = await userWithKey();
      const { browser, page } = await secondStep(alice);
      const answer = await verifyWith(browser, page, bobsKey.assert(optionsIn<RequestOptions>(page, '/verify')));
      refused(answer, KEY_NOT_KNOWN);
      assert.deepEqual((await events(alice.id, 'two_step.failed')).map((e) => [e.kind, e.reason]), [['security-key', 'wrong_answer']]);
      assert.equal((await events(bob.id, 'sign_in.succeeded')).length, 0);
      assert.equal((await events(alice.id, 'sign_in.succeeded')).length, 0);
      await nothingGranted(browser);
    });

    it("refuses a credential of the other kind: the user's own passkey answering the key's challenge, and the key answering the passkey's", async () => {
      const user = await newUser();
      const passkey = softKey();
      const key = softKey();
      const { id: passkeyId } = await addPasskey(store(), user.id, passkey, { label: 'Laptop' });
      const { id: keyId } = await addPasskey(store(), user.id, key, { label: 'YubiKey', kind: 'security-key' });

      const atKey = await secondStep(user);
      const onKey = await atKey.browser.follow(`${atKey.page.url}?method=${keyId}`);
      assert.match(onKey.body, /id="security-key-assert"/);
      refused(await verifyWith(atKey.browser, onKey, passkey.assert(optionsIn<RequestOptions>(onKey, '/verify'))), KEY_NOT_KNOWN);
      await nothingGranted(atKey.browser);

      const atPasskey = await secondStep(user);
      const onPasskey = await atPasskey.browser.follow(`${atPasskey.page.url}?method=${passkeyId}`);
      assert.match(onPasskey.body, /id="passkey-assert"/);
      refused(await verifyWith(atPasskey.browser, onPasskey, key.assert(optionsIn<RequestOptions>(onPasskey, '/verify'), { attachment: 'cross-platform' })), /That passkey or security key is not known here\./);
      await nothingGranted(atPasskey.browser);
      assert.deepEqual((await events(user.id, 'two_step.failed')).map((e) => [e.kind, e.reason]), [['security-key', 'wrong_answer'], ['webauthn', 'wrong_answer']]);
    });

    it('works on a device without face or fingerprint: the key opens there, while a passkey is listed as unable to work here', async () => {
      const { user, authenticatorId } = await userWithKey();
      const { id: passkeyId } = await addPasskey(store(), user.id, softKey(), { label: 'Laptop' });
      await store().authenticators.markUsed(passkeyId);
      const { browser, page } = await secondStep(user, undefined, MFA, 'incapable');
      assert.match(page.body, /id="security-key-assert"/, 'opened on the key, though the passkey was used last');
      const methods = await browser.follow(page.url.replace(/\/verify$/, '/verify/methods'));
      assert.match(methods.body, new RegExp(`verify\\?method=${authenticatorId}">Use your security key \\(YubiKey\\)<`), 'the key can be chosen');
      assert.match(methods.body, /This device has no face or fingerprint sign-in\./, 'the passkey cannot');
      assert.doesNotMatch(methods.body, new RegExp(`verify\\?method=${passkeyId}`));
    });
  });

  describe('signing in without a password', () => {
    it('accepts a key holding a resident credential that verified its user: acr phr, amr hwk+user+mfa', async () => {
      const { user, key } = await userWithKey();
      const browser = new CookieClient(server.url);
      const start = await passwordlessStart(browser);
      assert.equal(start.options.userVerification, 'required');
      assert.equal(start.options.allowCredentials, undefined, 'a discoverable credential: nobody said who they are yet');
      const claims = await throughToApp(browser, await passwordlessAnswer(browser, start, key.assert(start.options, { attachment: 'cross-platform' })), rp, start.req.checks);
      assert.equal(claims.sub, user.id);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['hwk', 'user', 'mfa']));
    });

    it('refuses a key that did not verify its user (alone it would be one factor): the sign-in page with the reason, no session', async () => {
      const { user, key, authenticatorId } = await userWithKey();
      const browser = new CookieClient(server.url);
      const start = await passwordlessStart(browser);
      const mark = server.logText().length;
      const page = await passwordlessAnswer(browser, start, key.assert(start.options, { ...NO_PIN, attachment: 'cross-platform' }));
      refused(page, /Your security key did not check its PIN, so it can&#39;t sign you in on its own\./);
      assert.match(page.body, /\/login"/, 'the sign-in page again');
      assert.match(server.logText().slice(mark), /User verification required/);
      assert.ok((await events(user.id, 'sign_in.failed')).some((e) => e.method === 'passkey' && e.reason === 'wrong_answer'));
      assert.equal((await events(user.id, 'sign_in.succeeded')).length, 0);
      assert.equal(((await store().authenticators.find(user.id, authenticatorId))!.data as { counter: number }).counter, 0, 'nothing moved');
      await nothingGranted(browser);
    });

    it("refuses a key's credential claiming another account's user handle", async () => {
      const { user, key } = await userWithKey();
      const other = await newUser();
      const browser = new CookieClient(server.url);
      const start = await passwordlessStart(browser);
      refused(await passwordlessAnswer(browser, start, key.assert(start.options, { userHandle: userHandleOf(other.id) })), /That passkey or security key is not known here\./);
      assert.equal((await events(user.id, 'sign_in.succeeded')).length, 0);
      assert.equal((await events(other.id, 'sign_in.succeeded')).length, 0);
      await nothingGranted(browser);
    });
  });
});
