import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { PASSKEY_OPTIONS_PER_MINUTE } from '../../src/interaction/sign-in.ts';
import { sleep } from '../account/helpers.ts';
import { CookieClient, findForm, optionsIn, type Page } from '../helpers/browser.ts';
import { responseParams } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { freePort, startTestServer, type TestServer } from '../helpers/server.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import {
  addQuestion, addTotp, recoveryCodesOn, throughToApp, type Person,
} from '../helpers/two-step.ts';
import {
  addPasskey, COSE_ALG, FLAGS, newKeyPair, SoftPasskey, userHandleOf,
  type AssertionJSON, type CreationOptions, type RegistrationJSON, type RequestOptions,
} from '../helpers/webauthn.ts';

const MFA = 'urn:latchkey:acr:mfa';
const PHR = 'phr';
const REDIRECT = 'http://localhost:9999/cb';
const ENROL = '/account/two-step/webauthn';
const NOT_CHECKED = /That passkey could not be checked\. Try again, or use another way\./;
const NOT_KNOWN = /That passkey or security key is not known here\./;
const TOO_LATE = /That took too long\. Try again\./;
const COPY = /it looks like a copy/;
/** An error on the enrolment page (what it says about a refused passkey is not the point here). */
const REFUSED = /<p class="error" role="alert" id="form-error">[^<]+<\/p>/;

type Browsed = Page & { stoppedAt?: string };
type Checks = Awaited<ReturnType<RelyingParty['authorization']>>['checks'];

/**
 * Everything a scenario needs from one server: users, the app, the account page, the passkey sign-in
 * endpoints, and what the server recorded.
 */
function world(get: () => TestServer, name: string) {
  let users = 0;
  let rp: RelyingParty;
  const w = {
    async init() {
      rp = await RelyingParty.create(get().url, await get().addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
    },
    get rp() {
      return rp;
    },
    store: () => get().server.services.store,
    knex: () => get().server.services.database.knex,
    /** A fresh user with a password and a security question (every passkey needs the question first). */
    async newUser(): Promise<Person> {
      const n = ++users;
      const person = { email: `${name}${n}@example.com`, password: `${name} user ${n} long password`, answer: 'rex the dog' };
      const user = await get().addUser(person);
      await addQuestion(w.store(), (s) => get().server.services.hasher.hash(s), user.id, person.answer);
      return { ...person, id: user.id };
    },
    /** A passkey for this server's origin (or another), not stored anywhere yet. */
    passkey: (init: Partial<ConstructorParameters<typeof SoftPasskey>[0]> = {}) => new SoftPasskey({ origin: get().url, ...init }),
    /** A user whose passkey was put straight into the store. */
    async userWithPasskey(init: Partial<ConstructorParameters<typeof SoftPasskey>[0]> = {}, counter = 0) {
      const user = await w.newUser();
      const passkey = w.passkey(init);
      const { id } = await addPasskey(w.store(), user.id, passkey, { counter });
      return { user, passkey, authenticatorId: id };
    },
    async passkeysOf(userId: string) {
      return (await w.store().authenticators.listForUser(userId)).filter((a) => a.kind === 'webauthn');
    },
    async events(userId: string, type: string): Promise<Record<string, unknown>[]> {
      const rows = await w.knex()('security_events').where({ user_id: userId, type }).orderBy('id').select('details');
      return rows.map((r: { details: unknown }) => (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>);
    },

    /** Signs in to the account page in a fresh browser: the password, then the question a new device is asked. */
    async accountBrowser(user: Person, origin = get().url): Promise<CookieClient> {
      const browser = new CookieClient(origin);
      const login = await browser.follow('/account');
      assert.match(login.body, /\/login"/, 'the sign-in page');
      const question = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.match(question.body, /name="answer"/, `the question for a new device, got ${question.status} at ${question.url}`);
      const page = await browser.submit(question, '/verify', { answer: user.answer });
      assert.equal(page.status, 200, page.body.slice(0, 300));
      assert.equal(new URL(page.url).pathname, '/account');
      return browser;
    },
    /** The passkey enrolment page: its form and the creation options it carries. */
    async enrolPage(browser: CookieClient) {
      const page = await browser.follow(ENROL);
      assert.equal(page.status, 200, `the enrolment page, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
      return { page, options: optionsIn<CreationOptions>(page, ENROL) };
    },
    register: (browser: CookieClient, page: Page, credential: RegistrationJSON, label = 'My laptop') =>
      browser.submit(page, ENROL, { credential: JSON.stringify(credential), label }),

    /** Opens the app's sign-in page and asks for a passkey challenge, as the page's script does. */
    async passkeyStart(browser: CookieClient, params: Record<string, string> = {}) {
      const req = await rp.authorization({ scope: 'openid', ...params });
      const login = await browser.follow(req.url);
      assert.match(login.body, /\/login"/, `the sign-in page, got ${login.status} at ${login.url}`);
      const form = findForm(login.body, '/passkey');
      const action = new URL(form.action, login.url).toString();
      const res = await browser.request(`${action}/options`, { form: { csrf: form.hidden.csrf! }, headers: { accept: 'application/json' } });
      assert.equal(res.status, 200, res.body.slice(0, 300));
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const { pending, options } = JSON.parse(res.body) as { pending: string; options: RequestOptions };
      return { req, action, csrf: form.hidden.csrf!, pending, options };
    },
    /** Posts a signed response to the passkey sign-in. */
    passkeyAnswer(browser: CookieClient, start: { action: string; csrf: string; pending: string }, credential: AssertionJSON, pending = start.pending) {
      return browser.follow(start.action, { form: { csrf: start.csrf, pending, credential: JSON.stringify(credential) } });
    },

    /** The password of a user with a passkey, with the app asking for mfa: the passkey form of the second step. */
    async atPasskeyStep(user: Person, browser = new CookieClient(get().url)) {
      const req = await rp.authorization({ scope: 'openid', acr_values: MFA });
      const login = await browser.follow(req.url);
      const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(page.status, 200, `the second step, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
      assert.match(new URL(page.url).pathname, /^\/interaction\/[^/]+\/verify$/);
      assert.match(page.body, /id="passkey-assert"/, 'the passkey form');
      return { browser, req, page, options: optionsIn<RequestOptions>(page, '/verify') };
    },
    verifyWith: (browser: CookieClient, page: Page, credential: AssertionJSON) =>
      browser.submit(page, '/verify', { credential: JSON.stringify(credential) }),

    /** Through consent to the app; the ID token's claims. */
    toApp: (browser: CookieClient, page: Browsed, checks: Checks) => throughToApp(browser, page, rp, checks),
    /** Refused on the page (4xx, the message), not sent on to the app or its consent page. */
    refused(page: Browsed, message: RegExp) {
      assert.ok(page.status >= 400 && page.status < 500, `refused, got ${page.status} at ${page.url}`);
      assert.equal(page.stoppedAt, undefined, 'not sent back to the app');
      assert.doesNotMatch(page.body, /\/confirm"/, 'not at the consent page');
      assert.match(page.body, message);
    },
    /** The browser holds no session: a silent request gives login_required, never a code. */
    async nothingGranted(browser: CookieClient) {
      const page = await browser.follow((await rp.authorization({ scope: 'openid', prompt: 'none' })).url);
      assert.ok(page.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${page.status} at ${page.url}`);
      const params = responseParams(page.stoppedAt);
      assert.equal(params.get('error'), 'login_required');
      assert.equal(params.get('code'), null);
    },
    errorAtApp(page: Browsed, error: string) {
      assert.ok(page.stoppedAt?.startsWith(REDIRECT), `back at the app, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
      const params = responseParams(page.stoppedAt);
      assert.equal(params.get('error'), error);
      assert.equal(params.get('code'), null, 'never a code at a lower level');
    },
  };
  return w;
}

describe('passkeys at the HTTP level, with responses crafted by the test', () => {
  let server: TestServer;
  let mailbox: MailBox;
  const w = world(() => server, 'passkey');

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    await w.init();
  });
  after(async () => {
    await server?.stop();
    await mailbox?.stop();
  });

  describe('configuration', () => {
    it('ships the documented defaults: the issuer host as rpId, its origin, 180-second challenges, EdDSA/ES256/RS256, the offer on', () => {
      assert.deepEqual({ ...loadConfig({ env: {} }).webauthn }, {
        rpId: 'localhost', origins: ['http://localhost:3000'], challengeTtlSeconds: 180, algorithms: ['EdDSA', 'ES256', 'RS256'], offerAfterSignIn: true,
      });
      assert.equal(server.config.webauthn.rpId, 'localhost');
      assert.deepEqual(server.config.webauthn.origins, [server.url], 'the test server runs the defaults');
    });

    it('refuses an rpId that is not the host name (or a parent domain) of every origin, naming webauthn.rpId', () => {
      const bad: Record<string, unknown>[] = [
        { webauthn: { rpId: 'example.com' } },
        { issuer: 'https://login.example.com', webauthn: { rpId: 'example.com', origins: ['https://login.example.com', 'https://evil.test'] } },
        // A suffix of the host name that is not a parent domain.
        { issuer: 'https://login.notexample.com', webauthn: { rpId: 'example.com' } },
        { issuer: 'https://example.com', webauthn: { rpId: 'login.example.com' } },
      ];
      for (const overrides of bad) {
        assert.throws(() => loadConfig({ env: {}, overrides }), (err: unknown) => err instanceof ConfigError && /webauthn\.rpId/.test(err.message), JSON.stringify(overrides));
      }
      // A parent domain is allowed, and origins are kept as origins.
      const parent = loadConfig({ env: {}, overrides: { issuer: 'https://login.example.com', webauthn: { rpId: 'Example.com', origins: ['https://login.example.com/path', 'https://id.example.com'] } } });
      assert.equal(parent.webauthn.rpId, 'example.com');
      assert.deepEqual(parent.webauthn.origins, ['https://login.example.com', 'https://id.example.com']);
    });
  });

  describe('enrolling on the account page', () => {
    it('refuses registrations that break a server-side rule (each for its own reason), stores nothing, and never offers a checked challenge again', async () => {
      const user = await w.newUser();
      const browser = await w.accountBrowser(user);
      const passkey = w.passkey();
      const notPlatform = /Use this device&#39;s own face, fingerprint or screen lock \(not a security key or another device\)/;
      // [what, the crafted response, the message shown, the reason logged when the library checked it]
      const cases: [string, (o: CreationOptions) => RegistrationJSON | string, RegExp, RegExp?][] = [
        ['another origin', (o) => passkey.register(o, { origin: 'http://evil.localhost:9999' }), REFUSED, /Unexpected registration response origin/],
        ['the rpIdHash of another id', (o) => passkey.register(o, { rpId: 'evil.example' }), REFUSED, /Unexpected RP ID hash/],
        ['the type of an assertion', (o) => passkey.register(o, { type: 'webauthn.get' }), REFUSED, /Unexpected registration response type/],
        ['a challenge this enrolment did not give', (o) => passkey.register(o, { challenge: Buffer.from('a challenge of my own choosing!!').toString('base64url') }), REFUSED, /Unexpected registration response challenge/],
        ['user presence only (UV not set)', (o) => passkey.register(o, { flags: FLAGS.UP | FLAGS.AT }), REFUSED, /User verification was required/],
        ['user verification without presence (UP not set)', (o) => passkey.register(o, { flags: FLAGS.UV | FLAGS.AT }), REFUSED, /User presence was required/],
        ['a "none" attestation with a statement', (o) => passkey.register(o, { attStmt: new Map([['sig', Buffer.alloc(8)]]) }), REFUSED, /None attestation had unexpected attestation statement/],
        ['a security key (cross-platform)', (o) => passkey.register(o, { attachment: 'cross-platform' }), notPlatform],
        ['no attachment reported', (o) => passkey.register(o, { attachment: null }), notPlatform],
        ['not JSON at all', () => 'not json', /Your device did not answer/],
      ];
      let { page, options } = await w.enrolPage(browser);
      const checked = new Set<string>();
      for (const [what, make, message, reason] of cases) {
        const credential = make(options);
        const mark = server.logText().length;
        const answer = await browser.submit(page, ENROL, { credential: typeof credential === 'string' ? credential : JSON.stringify(credential), label: 'My laptop' });
        assert.equal(answer.status, 400, `${what}: refused`);
        assert.match(answer.body, message, what);
        if (reason) {
          assert.match(server.logText().slice(mark), reason, `${what}: refused for that reason`);
          checked.add(options.challenge);
        }
        assert.deepEqual(await w.passkeysOf(user.id), [], `${what}: nothing stored`);
        page = answer;
        options = optionsIn<CreationOptions>(answer, ENROL);
        assert.ok(!checked.has(options.challenge), `${what}: a challenge that was checked is never offered again`);
      }
      assert.equal((await w.events(user.id, 'two_step.added')).length, 0);
      // The same passkey, answered properly, is then accepted.
      const done = await w.register(browser, page, passkey.register(options));
      assert.equal(done.status, 200, done.body.slice(0, 300));
      assert.equal((await w.passkeysOf(user.id)).length, 1);
    });

    it('registers a platform passkey (options asking for UV, a resident key and the configured algorithms), with recovery codes and a mail; it then signs in alone: acr phr, amr hwk+user+mfa', async () => {
      const user = await w.newUser();
      const browser = await w.accountBrowser(user);
      const { page, options } = await w.enrolPage(browser);
      assert.equal(options.rp.id, 'localhost');
      assert.equal(options.user.id, userHandleOf(user.id), 'the user handle is the account id');
      assert.deepEqual(options.pubKeyCredParams?.map((p) => p.alg), [COSE_ALG.EdDSA, COSE_ALG.ES256, COSE_ALG.RS256]);
      assert.equal(options.attestation, 'none');
      assert.equal(options.timeout, 180_000);
      assert.deepEqual(options.authenticatorSelection, { authenticatorAttachment: 'platform', residentKey: 'required', requireResidentKey: true, userVerification: 'required' });
      assert.match(options.challenge, /^[A-Za-z0-9_-]{43,}$/, 'at least 32 random bytes');

      const since = mailbox.messages.length;
      const passkey = w.passkey();
      const done = await w.register(browser, page, passkey.register(options), 'Work laptop');
      assert.equal(done.status, 200, done.body.slice(0, 300));
      assert.equal(recoveryCodesOn(done).length, 10, 'the first possession method comes with recovery codes');

      const [stored] = await w.passkeysOf(user.id);
      assert.ok(stored);
      assert.equal(stored.label, 'Work laptop');
      assert.equal(stored.externalId, passkey.id, 'the credential id');
      assert.equal(stored.publicKey, passkey.publicKeyCose, 'the COSE public key, base64url');
      const { deviceHash, ...data } = stored.data as { deviceHash?: unknown };
      assert.deepEqual(data, { counter: 0, transports: ['internal'], backupEligible: false, backedUp: false, aaguid: '00000000-0000-0000-0000-000000000000' });
      assert.match(String(deviceHash), /^[A-Za-z0-9_-]{43}$/, 'and the device it was made on (a hash)');
      const row = await w.knex()('authenticators').where({ id: stored.id }).first();
      assert.equal(row.secret_sealed, null, 'no secret: only the public key is kept');
      assert.equal((await w.events(user.id, 'two_step.added'))[0]?.kind, 'webauthn');

      const mail = await mailbox.next(user.email, { since });
      assert.match(mail.subject, /two-step verification was changed/);
      assert.match(mail.text, /Sign in with face or fingerprint added \(Work laptop\)/);

      const fresh = new CookieClient(server.url);
      const start = await w.passkeyStart(fresh);
      assert.equal(start.options.rpId, 'localhost');
      assert.equal(start.options.userVerification, 'required');
      assert.equal(start.options.allowCredentials, undefined, 'a discoverable credential: nobody said who they are yet');
      const claims = await w.toApp(fresh, await w.passkeyAnswer(fresh, start, passkey.assert(start.options)), start.req.checks);
      assert.equal(claims.sub, user.id);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['hwk', 'user', 'mfa']));
      assert.equal(((await w.passkeysOf(user.id))[0]!.data as { counter: number }).counter, 1, 'the signature counter moved forward');
    });

    it('keeps the backup-eligible flag of a synced passkey: its sign-in says swk, and it meets acr_values=phr', async () => {
      const user = await w.newUser();
      const browser = await w.accountBrowser(user);
      const { page, options } = await w.enrolPage(browser);
      const passkey = w.passkey({ backupEligible: true, backedUp: true });
      assert.equal((await w.register(browser, page, passkey.register(options))).status, 200);
      const [stored] = await w.passkeysOf(user.id);
      assert.equal((stored!.data as { backupEligible: boolean }).backupEligible, true);
      assert.equal((stored!.data as { backedUp: boolean }).backedUp, true);

      const fresh = new CookieClient(server.url);
      const start = await w.passkeyStart(fresh, { acr_values: PHR });
      const claims = await w.toApp(fresh, await w.passkeyAnswer(fresh, start, passkey.assert(start.options)), start.req.checks);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['swk', 'user', 'mfa']));
    });

    it('refuses a credential id that is already registered, for another user and for the same one', async () => {
      const alice = await w.newUser();
      const bob = await w.newUser();
      const alicePasskey = w.passkey();
      const aliceBrowser = await w.accountBrowser(alice);
      let enrol = await w.enrolPage(aliceBrowser);
      assert.equal((await w.register(aliceBrowser, enrol.page, alicePasskey.register(enrol.options))).status, 200);

      // Bob's authenticator claims Alice's credential id, with a key of its own.
      const bobBrowser = await w.accountBrowser(bob);
      enrol = await w.enrolPage(bobBrowser);
      const copy = w.passkey({ credentialId: alicePasskey.credentialId });
      const refused = await w.register(bobBrowser, enrol.page, copy.register(enrol.options));
      assert.equal(refused.status, 400);
      assert.match(refused.body, /This device is already set up/);
      assert.deepEqual(await w.passkeysOf(bob.id), []);
      const [kept] = await w.passkeysOf(alice.id);
      assert.equal(kept!.publicKey, alicePasskey.publicKeyCose, "Alice's key is untouched");

      // Alice, signed in with her passkey (the level a change now needs), registers the same id again.
      const again = new CookieClient(server.url);
      const login = await again.follow('/account');
      const form = findForm(login.body, '/passkey');
      const action = new URL(form.action, login.url).toString();
      const res = JSON.parse((await again.request(`${action}/options`, { form: { csrf: form.hidden.csrf! }, headers: { accept: 'application/json' } })).body) as { pending: string; options: RequestOptions };
      const account = await again.follow(action, { form: { csrf: form.hidden.csrf!, pending: res.pending, credential: JSON.stringify(alicePasskey.assert(res.options)) } });
      assert.equal(new URL(account.url).pathname, '/account', `signed in to the account page, at ${account.url}`);
      enrol = await w.enrolPage(again);
      assert.deepEqual(enrol.options.excludeCredentials, [{ id: alicePasskey.id, type: 'public-key', transports: ['internal'] }], 'the browser is told about it');
      const twice = await w.register(again, enrol.page, alicePasskey.register(enrol.options));
      assert.equal(twice.status, 400);
      assert.match(twice.body, /This device is already set up/);
      assert.equal((await w.passkeysOf(alice.id)).length, 1);
      // The refused answer was checked against its challenge: that challenge is spent, not offered again.
      const next = optionsIn<CreationOptions>(twice, ENROL);
      assert.notEqual(next.challenge, enrol.options.challenge, 'a checked challenge is never offered again');
      const late = await w.register(again, twice, w.passkey().register(enrol.options));
      assert.equal(late.status, 400, 'a new passkey over the spent challenge is refused');
      assert.equal((await w.passkeysOf(alice.id)).length, 1);
    });
  });

  describe('signing in with a passkey alone', () => {
    /** A sign-in refused: the login page again with the message, an event, and no session in that browser. */
    async function assertRefusedSignIn(browser: CookieClient, page: Browsed, message: RegExp, userId?: string, reason?: string) {
      w.refused(page, message);
      assert.match(page.body, /\/login"/, 'the sign-in page again');
      if (userId) {
        const failed = await w.events(userId, 'sign_in.failed');
        assert.ok(failed.some((e) => e.method === 'passkey' && (!reason || e.reason === reason)), `a sign_in.failed event (${reason ?? 'any'}): ${JSON.stringify(failed)}`);
        assert.equal((await w.events(userId, 'sign_in.succeeded')).length, 0);
      }
      await w.nothingGranted(browser);
    }

    // [what, the crafted response, the reason logged when the library checked it]
    const rules: [string, (p: SoftPasskey, o: RequestOptions) => AssertionJSON, RegExp?][] = [
      ['another origin', (p, o) => p.assert(o, { origin: 'http://evil.localhost:9999' }), /Unexpected authentication response origin/],
      ['an origin on another port', (p, o) => p.assert(o, { origin: p.origin.replace(/:(\d+)$/, (_, n: string) => `:${Number(n) + 1}`) }), /Unexpected authentication response origin/],
      ['the rpIdHash of another id', (p, o) => p.assert(o, { rpId: 'evil.example' }), /Unexpected RP ID hash/],
      ['the type of a registration', (p, o) => p.assert(o, { type: 'webauthn.create' }), /Unexpected authentication response type/],
      ['user presence only (UV not set)', (p, o) => p.assert(o, { flags: FLAGS.UP }), /User verification required/],
      ['user verification without presence (UP not set)', (p, o) => p.assert(o, { flags: FLAGS.UV }), /User not present/],
      ['a challenge this sign-in did not give', (p, o) => p.assert(o, { challenge: Buffer.from('a challenge of my own choosing!!').toString('base64url') }), /Unexpected authentication response challenge/],
      ['a signature by a different key', (p, o) => p.assert(o, { signingKey: newKeyPair().privateKey })],
      ['a signature made for another challenge', (p, o) => {
        const elsewhere = p.assert({ ...o, challenge: 'AAAA' });
        return p.assert(o, { signature: Buffer.from(elsewhere.response.signature, 'base64url') });
      }],
    ];
    for (const [what, make, reason] of rules) {
      it(`refuses ${what}: the sign-in page again, a failure recorded, no session`, async () => {
        const { user, passkey, authenticatorId } = await w.userWithPasskey();
        const browser = new CookieClient(server.url);
        const start = await w.passkeyStart(browser);
        const mark = server.logText().length;
        await assertRefusedSignIn(browser, await w.passkeyAnswer(browser, start, make(passkey, start.options)), NOT_CHECKED, user.id, 'wrong_answer');
        if (reason) assert.match(server.logText().slice(mark), reason, 'refused for that reason');
        assert.equal(((await w.store().authenticators.find(user.id, authenticatorId))!.data as { counter: number }).counter, 0, 'the counter is not moved by a refused answer');
      });
    }

    it('takes the challenge out before checking it: after one refused answer, a right one over the same challenge is refused too', async () => {
      const { user, passkey } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      const start = await w.passkeyStart(browser);
      await assertRefusedSignIn(browser, await w.passkeyAnswer(browser, start, passkey.assert(start.options, { flags: FLAGS.UP })), NOT_CHECKED, user.id);
      const retry = await w.passkeyAnswer(browser, start, passkey.assert(start.options));
      assert.equal(retry.status, 400);
      await assertRefusedSignIn(browser, retry, TOO_LATE, user.id);
    });

    it('accepts a challenge once: the same answer again, a fresh signature over it, or its use in another sign-in are refused', async () => {
      const { user, passkey } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      const start = await w.passkeyStart(browser);
      const answer = passkey.assert(start.options);
      // The same answer twice at once: one takes the challenge, the other finds it gone.
      const [a, b] = await Promise.all([w.passkeyAnswer(browser, start, answer), w.passkeyAnswer(browser, start, answer)]);
      const ok = [a, b].filter((p) => p.status < 400);
      assert.equal(ok.length, 1, `exactly one succeeds, got ${a.status} and ${b.status}`);
      assert.match([a, b].find((p) => p.status >= 400)!.body, TOO_LATE);
      await w.toApp(browser, ok[0]!, start.req.checks);
      assert.equal((await w.events(user.id, 'sign_in.succeeded')).length, 1);

      // Later, the same answer and a new signature over the same challenge: refused.
      assert.ok((await w.passkeyAnswer(browser, start, answer)).status >= 400);
      assert.ok((await w.passkeyAnswer(browser, start, passkey.assert(start.options))).status >= 400);
      // In another browser's sign-in: its own pending id with the old answer, or the old pending id.
      const other = new CookieClient(server.url);
      const second = await w.passkeyStart(other);
      const stolen = await w.passkeyAnswer(other, second, answer);
      await assertRefusedSignIn(other, stolen, NOT_CHECKED);
      const third = await w.passkeyStart(other);
      await assertRefusedSignIn(other, await w.passkeyAnswer(other, third, passkey.assert(start.options), start.pending), TOO_LATE);
      assert.equal((await w.events(user.id, 'sign_in.succeeded')).length, 1, 'one sign-in in all');
    });

    it('refuses an expired challenge', async () => {
      const { user, passkey } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      const start = await w.passkeyStart(browser);
      const row = await w.knex()('pending_steps').where({ id: start.pending }).first();
      assert.equal(row.kind, 'webauthn');
      assert.equal(row.user_id, null, 'nobody said who they are yet');
      const ttl = (new Date(row.expires_at).getTime() - new Date(row.created_at).getTime()) / 1000;
      assert.ok(Math.abs(ttl - 180) < 2, `the challenge lives challengeTtlSeconds (180 s), got ${ttl}`);
      await w.knex()('pending_steps').where({ id: start.pending }).update({ expires_at: new Date(Date.now() - 1000) });
      const page = await w.passkeyAnswer(browser, start, passkey.assert(start.options));
      assert.equal(page.status, 400);
      await assertRefusedSignIn(browser, page, TOO_LATE);
      assert.equal((await w.events(user.id, 'sign_in.succeeded')).length, 0);
    });

    it('refuses a signature counter that went backwards, or did not move, logs it and records it, and keeps the stored counter', async () => {
      const { user, passkey, authenticatorId } = await w.userWithPasskey({}, 5);
      for (const counter of [3, 5]) {
        const browser = new CookieClient(server.url);
        const start = await w.passkeyStart(browser);
        const mark = server.logText().length;
        const page = await w.passkeyAnswer(browser, start, passkey.assert(start.options, { counter }));
        await assertRefusedSignIn(browser, page, COPY, user.id, 'replayed');
        const log = server.logText().slice(mark);
        assert.match(log, /signature counter did not move forward/, `counter ${counter}: logged`);
        assert.match(log, new RegExp(authenticatorId), 'naming the passkey');
        assert.equal(((await w.passkeysOf(user.id))[0]!.data as { counter: number }).counter, 5, 'the stored counter never goes back');
      }
      assert.equal((await w.events(user.id, 'sign_in.failed')).filter((e) => e.reason === 'replayed').length, 2);
      // The real authenticator, one further on, still works.
      const browser = new CookieClient(server.url);
      const start = await w.passkeyStart(browser);
      const claims = await w.toApp(browser, await w.passkeyAnswer(browser, start, passkey.assert(start.options, { counter: 6 })), start.req.checks);
      assert.equal(claims.sub, user.id);
    });

    it('refuses an assertion whose backup-eligible flag differs from the registered one, logs it, and keeps the real passkey working', async () => {
      for (const registered of [false, true]) {
        const { user, passkey, authenticatorId } = await w.userWithPasskey({ backupEligible: registered });
        const claimed = registered ? FLAGS.UP | FLAGS.UV : FLAGS.UP | FLAGS.UV | FLAGS.BE | FLAGS.BS;
        const browser = new CookieClient(server.url);
        const start = await w.passkeyStart(browser);
        const mark = server.logText().length;
        const page = await w.passkeyAnswer(browser, start, passkey.assert(start.options, { flags: claimed }));
        await assertRefusedSignIn(browser, page, /it is not the one that was set up/, user.id, 'wrong_answer');
        const log = server.logText().slice(mark);
        assert.match(log, /backup-eligible flag changed since registration/, 'logged');
        assert.match(log, new RegExp(authenticatorId), 'naming the passkey');
        assert.equal(((await w.passkeysOf(user.id))[0]!.data as { counter: number }).counter, 0, 'nothing stored from the refused assertion');
        // The passkey as registered still signs in, with the amr its registration earned.
        const again = new CookieClient(server.url);
        const next = await w.passkeyStart(again);
        const claims = await w.toApp(again, await w.passkeyAnswer(again, next, passkey.assert(next.options)), next.req.checks);
        assert.ok((claims.amr as string[]).includes(registered ? 'swk' : 'hwk'));
      }
    });

    it('lets only one of two parallel sign-ins with the same signature counter through (a cloned authenticator)', async () => {
      const { user, passkey } = await w.userWithPasskey({}, 5);
      const browsers = [new CookieClient(server.url), new CookieClient(server.url), new CookieClient(server.url)];
      const starts = await Promise.all(browsers.map((b) => w.passkeyStart(b)));
      const pages = await Promise.all(starts.map((start, i) => w.passkeyAnswer(browsers[i]!, start, passkey.assert(start.options, { counter: 6 }))));
      const through = pages.filter((p) => p.status < 400);
      assert.equal(through.length, 1, `one sign-in with counter 6, got ${pages.map((p) => p.status).join(', ')}`);
      for (const p of pages.filter((x) => x.status >= 400)) assert.match(p.body, COPY);
      assert.equal(((await w.passkeysOf(user.id))[0]!.data as { counter: number }).counter, 6);
      assert.equal((await w.events(user.id, 'sign_in.failed')).filter((e) => e.reason === 'replayed').length, 2);
    });

    it('refuses a credential id the server does not know, and a user handle that is not the owner\'s', async () => {
      const { user, passkey } = await w.userWithPasskey();
      const { user: other } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      let start = await w.passkeyStart(browser);
      const stranger = w.passkey();
      await assertRefusedSignIn(browser, await w.passkeyAnswer(browser, start, stranger.assert(start.options)), NOT_KNOWN);
      start = await w.passkeyStart(browser);
      await assertRefusedSignIn(browser, await w.passkeyAnswer(browser, start, passkey.assert(start.options, { userHandle: userHandleOf(other.id) })), NOT_KNOWN);
      // No user handle at all: a discoverable sign-in must say whose credential it is.
      start = await w.passkeyStart(browser);
      await assertRefusedSignIn(browser, await w.passkeyAnswer(browser, start, passkey.assert(start.options, { userHandle: null })), NOT_KNOWN);
      assert.equal((await w.events(user.id, 'sign_in.succeeded')).length, 0);
      assert.equal((await w.events(other.id, 'sign_in.succeeded')).length, 0);
      const anonymous = await w.knex()('security_events').whereNull('user_id').andWhere({ type: 'sign_in.failed' }).count<{ n: number }[]>('id as n');
      assert.ok(Number(anonymous[0]!.n) >= 2, 'recorded as failures of nobody in particular');
    });

    it("refuses the passkey endpoints without the page's CSRF token or from another site", async () => {
      const { user, passkey } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      const start = await w.passkeyStart(browser);
      const json = { accept: 'application/json' };
      assert.equal((await browser.request(`${start.action}/options`, { form: { csrf: 'forged' }, headers: json })).status, 403);
      assert.equal((await browser.request(`${start.action}/options`, { form: { csrf: start.csrf }, headers: { ...json, origin: 'http://evil.example' } })).status, 403);
      const answer = JSON.stringify(passkey.assert(start.options));
      assert.equal((await browser.request(start.action, { form: { csrf: 'forged', pending: start.pending, credential: answer } })).status, 403);
      assert.equal((await browser.request(start.action, { form: { csrf: start.csrf, pending: start.pending, credential: answer }, headers: { origin: 'http://evil.example' } })).status, 403);
      assert.equal((await w.events(user.id, 'sign_in.succeeded')).length, 0);
      await w.nothingGranted(browser);
    });

    it('limits the challenges one address can ask for (each is stored until it expires): a JSON 429 past the limit', async () => {
      const counters = () => server.server.services.database.knex('counters').where('key', 'like', 'passkey-options:%');
      await counters().delete(); // the other scenarios of this suite asked from the same address
      try {
        const browser = new CookieClient(server.url);
        const start = await w.passkeyStart(browser); // one challenge
        const ask = () => browser.request(`${start.action}/options`, { form: { csrf: start.csrf }, headers: { accept: 'application/json' } });
        let granted = 1;
        let refused;
        for (let i = 0; i < PASSKEY_OPTIONS_PER_MINUTE + 5 && !refused; i++) {
          const res = await ask();
          if (res.status === 200) granted++;
          else refused = res;
        }
        assert.equal(granted, PASSKEY_OPTIONS_PER_MINUTE, 'exactly the limit, then a refusal');
        assert.equal(refused?.status, 429);
        assert.equal(refused.headers.get('retry-after'), '60');
        assert.equal((JSON.parse(refused.body) as { error: string }).error, 'too_many_requests');
      } finally {
        await counters().delete();
      }
    });

    it('refuses malformed answers without crashing: not JSON, a wrong credential type, an id that is not base64url', async () => {
      const { passkey } = await w.userWithPasskey();
      const browser = new CookieClient(server.url);
      for (const credential of ['not json', JSON.stringify({ ...passkey.assert({ challenge: 'AAAA' }), type: 'password' }), JSON.stringify({ ...passkey.assert({ challenge: 'AAAA' }), id: 'not base64url!' })]) {
        const start = await w.passkeyStart(browser);
        const page = await browser.follow(start.action, { form: { csrf: start.csrf, pending: start.pending, credential } });
        w.refused(page, NOT_KNOWN);
      }
      await w.nothingGranted(browser);
    });
  });

  describe('a passkey as the second step after the password', () => {
    it('completes an mfa request with the passkey: acr phr, amr pwd+hwk+user+mfa', async () => {
      const { user, passkey, authenticatorId } = await w.userWithPasskey();
      const { browser, req, page, options } = await w.atPasskeyStep(user);
      assert.deepEqual(options.allowCredentials?.map((c) => c.id), [passkey.id], "only the user's passkeys are allowed");
      assert.equal(options.rpId, 'localhost');
      assert.equal(options.userVerification, 'required');
      const claims = await w.toApp(browser, await w.verifyWith(browser, page, passkey.assert(options)), req.checks);
      assert.equal(claims.acr, PHR);
      assert.deepEqual(new Set(claims.amr as string[]), new Set(['pwd', 'hwk', 'user', 'mfa']));
      assert.equal((await w.events(user.id, 'two_step.verified'))[0]?.kind, 'webauthn');
      assert.ok((await w.store().authenticators.find(user.id, authenticatorId))!.lastUsedAt, 'last used is recorded');
    });

    it("refuses another user's passkey answering this user's challenge, and keeps the sign-in powerless", async () => {
      const { user: alice } = await w.userWithPasskey();
      const { user: bob, passkey: bobsPasskey } = await w.userWithPasskey();
      const { browser, page, options } = await w.atPasskeyStep(alice);
      const answer = await w.verifyWith(browser, page, bobsPasskey.assert(options));
      assert.ok(answer.status >= 400 && answer.status < 500, `refused, got ${answer.status}`);
      assert.equal(answer.stoppedAt, undefined);
      const failed = await w.events(alice.id, 'two_step.failed');
      assert.deepEqual(failed.map((e) => [e.kind, e.reason]), [['webauthn', 'wrong_answer']]);
      assert.equal((await w.events(bob.id, 'sign_in.succeeded')).length, 0);
      assert.equal((await w.events(alice.id, 'sign_in.succeeded')).length, 0);
      await w.nothingGranted(browser);
    });

    it('refuses a signature counter that did not move, logs it and records a two_step.failed event', async () => {
      const { user, passkey } = await w.userWithPasskey({}, 5);
      const { browser, page, options } = await w.atPasskeyStep(user);
      const mark = server.logText().length;
      const answer = await w.verifyWith(browser, page, passkey.assert(options, { counter: 5 }));
      assert.ok(answer.status >= 400 && answer.status < 500, `refused, got ${answer.status}`);
      assert.match(server.logText().slice(mark), /signature counter did not move forward/);
      assert.deepEqual((await w.events(user.id, 'two_step.failed')).map((e) => [e.kind, e.reason]), [['webauthn', 'replayed']]);
      assert.equal(((await w.passkeysOf(user.id))[0]!.data as { counter: number }).counter, 5);
      await w.nothingGranted(browser);
    });

    it('refuses an answer over the challenge of a passkey sign-in started in the same browser', async () => {
      const { user, passkey } = await w.userWithPasskey();
      const { browser, page } = await w.atPasskeyStep(user);
      // The login page of another sign-in gives a challenge; its answer is posted to this second step.
      const other = await w.passkeyStart(new CookieClient(server.url));
      const answer = await w.verifyWith(browser, page, passkey.assert(other.options));
      assert.ok(answer.status >= 400 && answer.status < 500);
      await w.nothingGranted(browser);
    });
  });

  describe('"Add this device too"', () => {
    it('is not offered on the device that holds the passkey ("This device is set up"), and is on another device', async () => {
      const user = await w.newUser();
      const home = await w.accountBrowser(user);
      const { page, options } = await w.enrolPage(home);
      assert.equal((await w.register(home, page, w.passkey().register(options))).status, 200);
      const here = await home.follow('/account/security');
      assert.match(here.body, /id="passkey-here"/);
      assert.match(here.body, /This device is set up/);
      assert.doesNotMatch(here.body, /id="add-webauthn"/, 'nothing to add here');
      const other = await w.accountBrowser(user);
      const there = await other.follow('/account/security');
      assert.match(there.body, /id="add-webauthn"[^>]*>Add this device too</);
      assert.doesNotMatch(there.body, /id="passkey-here"/);
    });
  });

  describe('a second step on a device that cannot use the passkey', () => {
    /** The password with the app asking for mfa, the page's script having said whether a passkey works here. */
    async function secondStep(user: Person, browser: CookieClient, capability: 'capable' | 'incapable') {
      const login = await browser.follow((await w.rp.authorization({ scope: 'openid', acr_values: MFA, prompt: 'login' })).url);
      const page = await browser.submit(login, '/login', { email: user.email, password: user.password, passkey: capability });
      assert.equal(page.status, 200, `the second step, got ${page.status} at ${page.url}`);
      return page;
    }

    it('opens on another method when the device has no face or fingerprint, and lists the passkey with the reason, never opened', async () => {
      const { user, authenticatorId } = await w.userWithPasskey();
      await addTotp(w.store(), user.id);
      const browser = new CookieClient(server.url);
      const page = await secondStep(user, browser, 'incapable');
      assert.doesNotMatch(page.body, /id="passkey-assert"/, 'not opened on the passkey');
      assert.match(page.body, /name="code"/, 'opened on the authenticator app');
      const methods = await browser.follow(page.url.replace(/\/verify$/, '/verify/methods'));
      assert.match(methods.body, /This device has no face or fingerprint sign-in\./);
      assert.doesNotMatch(methods.body, new RegExp(`verify\\?method=${authenticatorId}`), 'no link to open it');
      const forced = await browser.follow(`${page.url}?method=${authenticatorId}`);
      assert.equal(forced.status, 400);
      assert.doesNotMatch(forced.body, /id="passkey-assert"/);
      assert.match(forced.body, /This device has no face or fingerprint sign-in\./);
      // Where the device can (or never said), the passkey opens as before.
      assert.match((await secondStep(user, new CookieClient(server.url), 'capable')).body, /id="passkey-assert"/);
    });

    it('knows a passkey that is not synced stays on the device it was made on: another browser opens on another method first, and may still choose it', async () => {
      const user = await w.newUser();
      const home = await w.accountBrowser(user);
      // Another browser that has signed in before (it has a device cookie of its own).
      const other = await w.accountBrowser(user);
      const { page, options } = await w.enrolPage(home);
      assert.equal((await w.register(home, page, w.passkey().register(options))).status, 200);
      await addTotp(w.store(), user.id);
      const [stored] = await w.passkeysOf(user.id);
      assert.match(String((stored!.data as { deviceHash?: string }).deviceHash), /^[A-Za-z0-9_-]{43}$/, 'it remembers the device it was made on');

      const elsewhere = await secondStep(user, other, 'capable');
      assert.doesNotMatch(elsewhere.body, /id="passkey-assert"/);
      assert.match(elsewhere.body, /name="code"/, 'opened on the authenticator app');
      // Another browser of the same computer may share its authenticator: the passkey can still be chosen.
      assert.match((await other.follow(`${elsewhere.url}?method=${stored!.id}`)).body, /id="passkey-assert"/);
      // The same device (its device cookie): the passkey opens.
      const sameDevice = new CookieClient(server.url);
      for (const [name, value] of home.jar) if (name.endsWith('lk.device')) sameDevice.jar.set(name, value);
      assert.match((await secondStep(user, sameDevice, 'capable')).body, /id="passkey-assert"/);
      // A browser with no device cookie at all (cleared) is not known to be another device: the passkey opens.
      assert.match((await secondStep(user, new CookieClient(server.url), 'capable')).body, /id="passkey-assert"/);
    });
  });

  describe('a level the user cannot reach', () => {
    it('never gives a weaker token to a user with only a password and a question asked for phr', async () => {
      const user = await w.newUser();
      const browser = new CookieClient(server.url);
      const login = await browser.follow((await w.rp.authorization({ scope: 'openid', acr_values: PHR })).url);
      const page: Browsed = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.equal(page.stoppedAt, undefined, 'no answer at the app yet');
      assert.match(page.body, /A passkey or a security key is needed/, 'told what would reach phr');
      assert.match(page.body, /turn on sign-in with face or fingerprint or add a security key/, 'told how: either method');
      assert.match(page.body, /href="\/account\/security"/);
      w.errorAtApp(await browser.submit(page, '/unmet'), 'unmet_authentication_requirements');
      await w.nothingGranted(browser);
    });

    it('leads a user with an authenticator app but no passkey asked for phr to turn passkeys on; going back gives unmet_authentication_requirements', async () => {
      const user = await w.newUser();
      await addTotp(w.store(), user.id);
      const browser = new CookieClient(server.url);
      const login = await browser.follow((await w.rp.authorization({ scope: 'openid', acr_values: PHR })).url);
      const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
      assert.doesNotMatch(page.body, /name="code"/, 'no code asked for: it could not reach phr');
      assert.match(page.body, /A passkey or a security key is needed/);
      w.errorAtApp(await browser.submit(page, '/unmet'), 'unmet_authentication_requirements');
      await w.nothingGranted(browser);
    });
  });
});

describe('passkeys on a server that accepts only EdDSA keys', () => {
  let server: TestServer;
  const w = world(() => server, 'eddsa');
  before(async () => {
    server = await startTestServer({ config: { webauthn: { algorithms: ['EdDSA'] } } });
    await w.init();
  });
  after(() => server?.stop());

  it('asks only for EdDSA and refuses an ES256 key on the server, whatever the browser sent', async () => {
    const user = await w.newUser();
    const browser = await w.accountBrowser(user);
    const { page, options } = await w.enrolPage(browser);
    assert.deepEqual(options.pubKeyCredParams?.map((p) => p.alg), [COSE_ALG.EdDSA]);
    const mark = server.logText().length;
    const refused = await w.register(browser, page, w.passkey().register(options));
    assert.equal(refused.status, 400);
    assert.match(refused.body, REFUSED);
    assert.match(server.logText().slice(mark), /Unexpected public key alg \\"-7\\", expected one of \\"-8\\"/, 'refused for its algorithm (in the log, JSON-escaped)');
    assert.deepEqual(await w.passkeysOf(user.id), []);
  });
});

describe('passkeys with several origins', () => {
  let server: TestServer;
  const w = world(() => server, 'origins');
  let second: string;
  before(async () => {
    const port = await freePort();
    second = `http://id.localhost:${port}`;
    server = await startTestServer({ config: { port, issuer: `http://localhost:${port}`, webauthn: { origins: [`http://localhost:${port}`, second] } } });
    await w.init();
  });
  after(() => server?.stop());

  it('accepts a registration and a sign-in from the second configured origin, and still refuses any other', async () => {
    assert.equal(server.config.webauthn.rpId, 'localhost');
    const user = await w.newUser();
    const browser = await w.accountBrowser(user);
    const { page, options } = await w.enrolPage(browser);
    const passkey = w.passkey({ origin: second });
    assert.equal((await w.register(browser, page, passkey.register(options))).status, 200);

    const stranger = new CookieClient(server.url);
    let start = await w.passkeyStart(stranger);
    w.refused(await w.passkeyAnswer(stranger, start, passkey.assert(start.options, { origin: `http://other.localhost:${new URL(server.url).port}` })), NOT_CHECKED);
    await w.nothingGranted(stranger);

    const fresh = new CookieClient(server.url);
    start = await w.passkeyStart(fresh);
    const claims = await w.toApp(fresh, await w.passkeyAnswer(fresh, start, passkey.assert(start.options)), start.req.checks);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.acr, PHR);
  });
});

describe('passkey registration needs a recent sign-in', () => {
  let server: TestServer;
  const w = world(() => server, 'recent');
  before(async () => {
    server = await startTestServer({ config: { account: { recentAuthSeconds: 1 } } });
    await w.init();
  });
  after(() => server?.stop());

  it('sends a registration that arrives after the sign-in got old to sign in again, and stores nothing', async () => {
    const user = await w.newUser();
    const browser = await w.accountBrowser(user);
    const { page, options } = await w.enrolPage(browser);
    await sleep(2100);
    const late = await w.register(browser, page, w.passkey().register(options));
    assert.match(late.body, /\/login"/, `the sign-in page again, got ${late.status} at ${late.url}`);
    assert.match(new URL(late.url).pathname, /^\/interaction\//);
    assert.deepEqual(await w.passkeysOf(user.id), []);
    assert.equal((await w.events(user.id, 'two_step.added')).length, 0);
    // Signing in again (this device is known now: the password alone) comes back to a new enrolment page.
    const again = await browser.submit(late, '/login', { email: user.email, password: user.password });
    assert.equal(new URL(again.url).pathname, ENROL, `back at the enrolment page, got ${again.status} at ${again.url}`);
    const fresh = optionsIn<CreationOptions>(again, ENROL);
    assert.notEqual(fresh.challenge, options.challenge);
    assert.equal((await w.register(browser, again, w.passkey().register(fresh))).status, 200);
    assert.equal((await w.passkeysOf(user.id)).length, 1);
  });
});
