import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { loadConfig } from '../../src/config.ts';
import { openGeoIp, parseGeoLine } from '../../src/geoip.ts';
import { writeMmdb } from '../helpers/mmdb.ts';
import { deviceHash } from '../../src/security/device.ts';
import { assessRisk, type RiskInput } from '../../src/interaction/risk.ts';
import { createLogger } from '../../src/log.ts';
import type { UserNetwork } from '../../src/store/networks.ts';
import { CookieClient, csrfOf, type Page } from '../helpers/browser.ts';
import { rejectsWith, responseParams, sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion } from '../helpers/two-step.ts';

const REDIRECT = 'http://localhost:9999/cb';
const ANSWER = 'Rex the dog';
const DAY = 86_400_000;

type Landed = Page & { stoppedAt?: string };

const isQuestionPage = (p: Page) => /action="\/interaction\/[^/"]+\/verify"/.test(p.body) && /name="answer"/.test(p.body);
const where = (p: Landed) => `${p.status} ${p.stoppedAt ?? p.url}: ${p.body.slice(0, 300)}`;
/** The reasons the second-step page gives, as the user reads them. */
const reasonsShown = (p: Page) =>
  [...(/<ul class="reasons">([\s\S]*?)<\/ul>/.exec(p.body)?.[1] ?? '').matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]!.replaceAll('&#39;', "'"));

/** A browser holding exactly these cookies. */
function withJar(origin: string, jar: Map<string, string>): CookieClient {
  const browser = new CookieClient(origin);
  for (const [k, v] of jar) browser.jar.set(k, v);
  return browser;
}

/** One character of `text` at `index` replaced by another base64url character. */
function flip(text: string, index: number): string {
  const c = text[index]!;
  return `${text.slice(0, index)}${c === 'A' ? 'B' : 'A'}${text.slice(index + 1)}`;
}

interface TestUser {
  id: string;
  email: string;
  password: string;
}

/** What a sign-in did: whether a second step was asked, why (as recorded), and whether the app got a code. */
interface Outcome {
  asked: boolean;
  reasons: string[];
  /** The reasons the second-step page gave the user. */
  shown: string[];
  page: Landed;
  done: boolean;
}

/** A sign-in driver over one server: the password, the security question when asked, consent when asked. */
function signInDriver(server: TestServer, rp: RelyingParty) {
  const knex = () => server.server.services.database.knex;

  async function lastSecondStep(userId: string): Promise<{ id: number; reasons: string[] } | undefined> {
    const row = await knex()('security_events').where({ user_id: userId, type: 'sign_in.second_step' }).orderBy('id', 'desc').first('id', 'details');
    if (!row) return undefined;
    const details = (typeof row.details === 'string' ? JSON.parse(row.details) : row.details) as { reasons?: string[] };
    return { id: Number(row.id), reasons: details.reasons ?? [] };
  }

  /**
   * Signs `user` in at the app in `browser` (prompt=login unless `params` say otherwise), sending `headers`
   * with every form; answers the question when asked unless `answer` is false.
   */
  async function signIn(browser: CookieClient, user: TestUser, opts: { headers?: Record<string, string>; answer?: boolean; params?: Record<string, string> } = {}): Promise<Outcome & { req: Awaited<ReturnType<RelyingParty['authorization']>> }> {
    const headers = opts.headers ?? {};
    const req = await rp.authorization(opts.params ?? { prompt: 'login' });
    const login = await browser.follow(req.url, { headers });
    assert.match(login.body, /\/login"/, `the sign-in page, got ${where(login)}`);
    const before = await lastSecondStep(user.id);
    let page: Landed = await browser.submit(login, '/login', { email: user.email, password: user.password }, headers);
    const asked = isQuestionPage(page);
    let reasons: string[] = [];
    const shown = reasonsShown(page);
    if (asked) {
      const event = await lastSecondStep(user.id);
      assert.ok(event && event.id !== before?.id, 'the second step is recorded');
      reasons = event.reasons;
      if (opts.answer !== false) page = await browser.submit(page, '/verify', { answer: ANSWER }, headers);
    }
    if (!page.stoppedAt && /\/confirm"/.test(page.body)) page = await browser.submit(page, '/confirm', {}, headers);
    const done = !!page.stoppedAt && !!responseParams(page.stoppedAt).get('code');
    return { asked, reasons, shown, page, done, req };
  }

  /** A fresh user with a security question (so the risk rules have something to ask for). */
  async function newUser(prefix: string): Promise<TestUser> {
    const user = await server.newUser(prefix);
    await addQuestion(server.server.services.store, (s) => server.server.services.hasher.hash(s), user.id);
    return user;
  }

  /** A user who completed a sign-in in the returned browser (its device and network now known). */
  async function knownBrowser(prefix: string, headers: Record<string, string> = {}) {
    const user = await newUser(prefix);
    const browser = new CookieClient(server.url);
    const first = await signIn(browser, user, { headers });
    assert.ok(first.asked, 'the first sign-in of an account is asked');
    assert.deepEqual(first.reasons, ['new_device', 'new_network']);
    assert.ok(first.done, where(first.page));
    return { user, browser };
  }

  return { signIn, newUser, knownBrowser, lastSecondStep };
}

const noServerError = (server: TestServer, before: number) => {
  const errors = server.logText().slice(before).split('\n').filter((l) => /"level":(50|60)/.test(l));
  assert.deepEqual(errors, [], 'nothing failed on the server');
};

/** Header values no proxy should send: none may crash a request or choose the client's address. */
const GARBAGE_XFF = [
  '', ' ', ',', ',,,', 'unknown', 'garbage, <script>, 999.1.1.1', '1.2.3.4.5', '300.1.1.1', '::ffff:', '::ffff:999.1.1.1',
  '[2001:db8::1]:443', '203.0.113.7:8080', '2001:db8::1%25eth0', '0x7f.0.0.1', '9'.repeat(4000), '203.0.113.7, , ,',
  'for=192.0.2.60;proto=http', "' OR 1=1 --", '%00', '1.1.1.1\\', 'a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p',
];

describe('risk rules', () => {
  describe('the rules on their own', () => {
    const config = loadConfig({ env: {} }).risk;
    const now = Date.UTC(2026, 5, 1, 12);
    const berlin = { latitude: 52.52, longitude: 13.4 };
    const network = (over: Partial<UserNetwork> = {}): UserNetwork => ({
      prefix: '203.0.113.0/24', country: null, latitude: null, longitude: null,
      firstSeenAt: new Date(now - 30 * DAY), lastSeenAt: new Date(now - DAY), ...over,
    });
    /** An ordinary sign-in: a known device, on a known network, seen yesterday, no failures. */
    const usual = (over: Partial<RiskInput> = {}): RiskInput => ({
      deviceKnown: true, prefix: '203.0.113.0/24', place: undefined, networks: [network()], recentFailures: 0, now, ...over,
    });

    it('ships the documented defaults: 90 days of inactivity, failures within 24 hours, 900 km/h, alerts on', () => {
      assert.deepEqual(config, { inactivityDays: 90, failureWindowHours: 24, impossibleTravelKmh: 900, newDeviceAlert: true });
    });

    it('finds nothing in an ordinary sign-in', () => {
      assert.deepEqual(assessRisk(usual(), config), []);
    });

    it('names a device the user never completed a sign-in on', () => {
      assert.deepEqual(assessRisk(usual({ deviceKnown: false }), config), ['new_device']);
    });

    it('names a network the user never signed in from, and an address that is no network at all', () => {
      assert.deepEqual(assessRisk(usual({ prefix: '198.51.100.0/24' }), config), ['new_network']);
      assert.deepEqual(assessRisk(usual({ prefix: undefined }), config), ['new_network'], 'unknown fails closed');
      assert.deepEqual(assessRisk(usual({ networks: [] }), config), ['new_network'], 'a first sign-in has no known network');
    });

    it('names recent failed attempts', () => {
      assert.deepEqual(assessRisk(usual({ recentFailures: 1 }), config), ['recent_failures']);
    });

    it('names a sign-in after more than risk.inactivityDays without one, and only then', () => {
      assert.deepEqual(assessRisk(usual({ networks: [network({ lastSeenAt: new Date(now - 91 * DAY) })] }), config), ['inactive']);
      assert.deepEqual(assessRisk(usual({ networks: [network({ lastSeenAt: new Date(now - 89 * DAY) })] }), config), []);
      const shorter = { ...config, inactivityDays: 30 };
      assert.deepEqual(assessRisk(usual({ networks: [network({ lastSeenAt: new Date(now - 31 * DAY) })] }), shorter), ['inactive']);
      // The most recent network counts, not the oldest.
      const networks = [network({ lastSeenAt: new Date(now - DAY) }), network({ prefix: '192.0.2.0/24', lastSeenAt: new Date(now - 200 * DAY) })];
      assert.deepEqual(assessRisk(usual({ networks }), config), []);
    });

    it('names a new country only against countries the user was seen in', () => {
      const inGermany = [network({ country: 'DE', ...berlin })];
      const fromUs = { country: 'US', latitude: 37.77, longitude: -122.42 };
      assert.ok(assessRisk(usual({ networks: inGermany, place: fromUs }), config).includes('new_country'));
      assert.deepEqual(assessRisk(usual({ networks: inGermany, place: { country: 'DE', ...berlin } }), config), []);
      assert.deepEqual(assessRisk(usual({ place: { country: 'US' } }), config), [], 'no country known yet: nothing to compare');
      assert.deepEqual(assessRisk(usual({ networks: inGermany }), config), [], 'no place for this address: not a new country');
    });

    it('names travel too fast between two far places, not a slow or a short trip', () => {
      const sf = { country: 'US', latitude: 37.77, longitude: -122.42 };
      const lastHour = [network({ country: 'US', latitude: berlin.latitude, longitude: berlin.longitude, lastSeenAt: new Date(now - 3_600_000) })];
      // Berlin to San Francisco (about 9,100 km) in an hour: the country is the same, the trip is impossible.
      assert.deepEqual(assessRisk(usual({ networks: lastHour, place: sf }), config), ['impossible_travel']);
      const lastWeek = [network({ country: 'US', ...berlin, lastSeenAt: new Date(now - 7 * DAY) })];
      assert.deepEqual(assessRisk(usual({ networks: lastWeek, place: sf }), config), [], 'a week is enough to fly');
      // Berlin to Hamburg (about 255 km) a minute later: GeoIP is not that precise.
      const hamburg = { country: 'US', latitude: 53.55, longitude: 9.99 };
      const justNow = [network({ country: 'US', ...berlin, lastSeenAt: new Date(now - 60_000) })];
      assert.deepEqual(assessRisk(usual({ networks: justNow, place: hamburg }), config), []);
      // A faster limit lets the hour-long trip pass.
      assert.deepEqual(assessRisk(usual({ networks: lastHour, place: sf }), { ...config, impossibleTravelKmh: 5000 }), ['impossible_travel']);
      const tenHours = [network({ country: 'US', ...berlin, lastSeenAt: new Date(now - 10 * 3_600_000) })];
      assert.deepEqual(assessRisk(usual({ networks: tenHours, place: sf }), { ...config, impossibleTravelKmh: 5000 }), []);
    });

    it('lists every reason once, in the order of the rules', () => {
      const networks = [network({ prefix: '192.0.2.0/24', country: 'DE', ...berlin, lastSeenAt: new Date(now - 100 * DAY - 1) })];
      const input = usual({ deviceKnown: false, prefix: '198.51.100.0/24', place: { country: 'US', latitude: 37.77, longitude: -122.42 }, networks, recentFailures: 3 });
      // 100 days for 9,100 km is slow: no impossible travel.
      assert.deepEqual(assessRisk(input, config), ['new_device', 'new_network', 'new_country', 'recent_failures', 'inactive']);
    });
  });

  describe('GeoIP lookups from a DB-IP "lite" CSV or a MaxMind DB', () => {
    let dir: string;
    const silentLog = createLogger('silent', new Writable({ write: (_c, _e, cb) => cb() }));
    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'latchkey-geoip-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('reads both formats, quoted or not, and refuses lines that are neither', () => {
      assert.deepEqual(parseGeoLine('203.0.113.0,203.0.113.255,EU,DE,Berlin,Berlin,52.52,13.40'),
        { start: '203.0.113.0', end: '203.0.113.255', place: { country: 'DE', latitude: 52.52, longitude: 13.4 } });
      assert.deepEqual(parseGeoLine('"198.51.100.0","198.51.100.255","NA","US","California","San Francisco","37.77","-122.42"'),
        { start: '198.51.100.0', end: '198.51.100.255', place: { country: 'US', latitude: 37.77, longitude: -122.42 } });
      assert.deepEqual(parseGeoLine('8.8.8.0,8.8.8.255,US'), { start: '8.8.8.0', end: '8.8.8.255', place: { country: 'US' } });
      // RFC 4180, as DB-IP writes it: a comma inside quotes is part of a name, not a column.
      assert.deepEqual(parseGeoLine('192.0.2.0,192.0.2.255,NA,US,"District of Columbia","Washington, D.C.",38.9,-77.03')?.place,
        { country: 'US', latitude: 38.9, longitude: -77.03 });
      assert.deepEqual(parseGeoLine('192.0.2.0,192.0.2.255,NA,BQ,"Bonaire, Sint Eustatius, and Saba","Kralendijk ""Playa""",12.15,-68.27')?.place,
        { country: 'BQ', latitude: 12.15, longitude: -68.27 });
      assert.deepEqual(parseGeoLine('2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,EU,FR,Ile-de-France,Paris,48.85,2.35')?.place,
        { country: 'FR', latitude: 48.85, longitude: 2.35 });
      assert.deepEqual(parseGeoLine('192.0.2.0,192.0.2.255,EU,NL,Noord-Holland,Amsterdam,,')?.place, { country: 'NL' }, 'no coordinates: the country only');
      for (const bad of ['', 'ip_start,ip_end,country', 'x,y,US', '1.2.3.0,2001:db8::,US', '1.2.3.0,1.2.3.255,usa', '1.2.3.0,1.2.3.255', '1.2.3.0,1.2.3.255,EU,D,B,B,1,2']) {
        assert.equal(parseGeoLine(bad), undefined, bad);
      }
    });

    it('finds IPv4 and IPv6 addresses in their ranges, and nothing outside them', async () => {
      const file = path.join(dir, 'dbip-city-lite.csv');
      await writeFile(file, [
        '192.0.2.0,192.0.2.255,EU,NL,Noord-Holland,Amsterdam,52.37,4.89',
        '198.51.100.0,198.51.100.255,NA,US,California,San Francisco,37.77,-122.42',
        '203.0.113.0,203.0.113.255,EU,DE,Berlin,Berlin,52.52,13.40',
        'not a line',
        '2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,EU,FR,Ile-de-France,Paris,48.85,2.35',
        '',
      ].join('\n'));
      const geo = openGeoIp(file, silentLog)!;
      await geo.ready();
      assert.deepEqual(geo.lookup('203.0.113.7'), { country: 'DE', latitude: 52.52, longitude: 13.4 });
      assert.deepEqual(geo.lookup('203.0.113.0'), { country: 'DE', latitude: 52.52, longitude: 13.4 }, 'the first address of a range');
      assert.deepEqual(geo.lookup('203.0.113.255'), { country: 'DE', latitude: 52.52, longitude: 13.4 }, 'the last address of a range');
      assert.equal(geo.lookup('198.51.100.9')?.country, 'US');
      assert.equal(geo.lookup('::ffff:198.51.100.9')?.country, 'US', 'IPv4-mapped IPv6 is IPv4');
      assert.deepEqual(geo.lookup('2001:db8:85a3::8a2e:370:7334'), { country: 'FR', latitude: 48.85, longitude: 2.35 });
      assert.equal(geo.lookup('2001:db8::')?.country, 'FR');
      for (const outside of ['203.0.114.0', '198.51.99.255', '8.8.8.8', '0.0.0.0', '2001:db9::1', '2001:db7:ffff::1', '::1', 'garbage', '']) {
        assert.equal(geo.lookup(outside), undefined, outside);
      }
    });

    it('finds the same places in a MaxMind DB (.mmdb) file, and answers "unknown" for a broken one', async () => {
      const file = path.join(dir, 'dbip-city-lite.mmdb');
      await writeFile(file, writeMmdb([
        { network: '192.0.2.0/24', country: 'NL', latitude: 52.37, longitude: 4.89 },
        { network: '198.51.100.0/24', country: 'US', latitude: 37.77, longitude: -122.42 },
        { network: '203.0.113.0/24', country: 'DE', latitude: 52.52, longitude: 13.4 },
        { network: '2001:db8::/32', country: 'FR', latitude: 48.85, longitude: 2.35 },
        { network: '100.64.0.0/10', country: 'CA' },
      ]));
      const geo = openGeoIp(file, silentLog)!;
      await geo.ready();
      assert.deepEqual(geo.lookup('203.0.113.7'), { country: 'DE', latitude: 52.52, longitude: 13.4 });
      assert.deepEqual(geo.lookup('203.0.113.0'), { country: 'DE', latitude: 52.52, longitude: 13.4 }, 'the first address of a network');
      assert.deepEqual(geo.lookup('203.0.113.255'), { country: 'DE', latitude: 52.52, longitude: 13.4 }, 'the last address of a network');
      assert.equal(geo.lookup('::ffff:198.51.100.9')?.country, 'US', 'IPv4-mapped IPv6 is IPv4');
      assert.deepEqual(geo.lookup('2001:db8:85a3::8a2e:370:7334'), { country: 'FR', latitude: 48.85, longitude: 2.35 });
      assert.deepEqual(geo.lookup('100.127.255.1'), { country: 'CA' }, 'a country without coordinates');
      for (const outside of ['203.0.114.0', '198.51.99.255', '8.8.8.8', '2001:db9::1', '::1', 'garbage', '']) {
        assert.equal(geo.lookup(outside), undefined, outside);
      }
      const lines: string[] = [];
      const log = createLogger('info', new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }));
      const broken = path.join(dir, 'broken.mmdb');
      await writeFile(broken, 'not a MaxMind database');
      const none = openGeoIp(broken, log)!;
      await none.ready();
      assert.equal(none.lookup('203.0.113.7'), undefined);
      assert.match(lines.join(''), /GeoIP file could not be read/);
    });

    it('answers "unknown" for a missing file and for no file, and never throws', async () => {
      const lines: string[] = [];
      const log = createLogger('info', new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }));
      const geo = openGeoIp(path.join(dir, 'does-not-exist.csv'), log)!;
      assert.equal(geo.lookup('203.0.113.7'), undefined, 'before it is read');
      await geo.ready();
      assert.equal(geo.lookup('203.0.113.7'), undefined);
      assert.match(lines.join(''), /GeoIP file could not be read/);
      assert.equal(openGeoIp(undefined, log), undefined);
    });
  });

  describe('on real sign-ins', () => {
    let server: TestServer;
    let rp: RelyingParty;
    let drive: ReturnType<typeof signInDriver>;

    before(async () => {
      server = await startTestServer();
      rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: [REDIRECT] }));
      drive = signInDriver(server, rp);
    });
    after(() => server.stop());

    const knex = () => server.server.services.database.knex;

    it('asks on a fresh cookie jar, and not again on the device where the sign-in was completed', async () => {
      const { user, browser } = await drive.knownBrowser('jar');
      const again = await drive.signIn(browser, user);
      assert.equal(again.asked, false, `a known device on a known network, got ${where(again.page)}`);
      assert.ok(again.done);
      const fresh = await drive.signIn(new CookieClient(server.url), user, { answer: false });
      assert.ok(fresh.asked);
      assert.deepEqual(fresh.reasons, ['new_device']);
    });

    it('asks when the device cookie was tampered with, oversized or garbage, and never fails on it', async () => {
      const { user, browser } = await drive.knownBrowser('tamper');
      const cookie = browser.jar.get('lk.device');
      assert.ok(cookie, 'the browser was given a device cookie');
      const [id, sig] = cookie.split('.') as [string, string];
      for (const value of [`${flip(id, 5)}.${sig}`, `${id}.${flip(sig, 10)}`, id, `${id}.${sig}.${sig}`, `${'A'.repeat(43)}.${sig}`, 'x'.repeat(3000), '%%%']) {
        const tab = withJar(server.url, browser.jar);
        tab.jar.set('lk.device', value);
        const attempt = await drive.signIn(tab, user, { answer: false });
        assert.equal(attempt.page.status, 200, `${value.slice(0, 60)}: ${where(attempt.page)}`);
        assert.ok(attempt.asked, `${value.slice(0, 60)} is not the known device`);
        assert.deepEqual(attempt.reasons, ['new_device']);
      }
      // The real cookie still works.
      assert.equal((await drive.signIn(browser, user)).asked, false);
    });

    it("asks a user signing in with another user's device cookie", async () => {
      const { browser: alicesBrowser } = await drive.knownBrowser('owner');
      const { user: bob } = await drive.knownBrowser('borrower'); // Bob's own device and this network are known
      const borrowed = new CookieClient(server.url);
      borrowed.jar.set('lk.device', alicesBrowser.jar.get('lk.device')!);
      const attempt = await drive.signIn(borrowed, bob, { answer: false });
      assert.ok(attempt.asked, 'a device known for Alice is unknown for Bob');
      assert.deepEqual(attempt.reasons, ['new_device']);
    });

    it('tells the user why, shows the reasons in the security activity and records them with the event', async () => {
      const user = await drive.newUser('why');
      const browser = new CookieClient(server.url);
      const asked = await drive.signIn(browser, user, { answer: false });
      assert.ok(asked.asked);
      assert.match(asked.page.body, /We(&#39;|')re asking for a second step because:/);
      assert.deepEqual(asked.shown, ["We don't recognise this device.", "You're signing in from a network you haven't used before."]);
      const done = await browser.submit(asked.page, '/verify', { answer: ANSWER });
      assert.ok(done.stoppedAt || /\/confirm"/.test(done.body), where(done));

      const activity = await browser.follow('/account/activity');
      assert.equal(activity.status, 200, where(activity));
      assert.match(activity.body, /Signed in as/);
      assert.match(activity.body, /Second step asked for/);
      assert.match(activity.body, /Asked because: We don(&#39;|')t recognise this device\./);

      const row = await knex()('security_events').where({ user_id: user.id, type: 'sign_in.second_step' }).first('details');
      const details = typeof row.details === 'string' ? JSON.parse(row.details) : row.details;
      assert.deepEqual(details.reasons, ['new_device', 'new_network']);
    });

    it('asks after a failed attempt on the account, even on a known device, and not once a sign-in completed', async () => {
      const { user, browser } = await drive.knownBrowser('failures');
      const req = await rp.authorization({ prompt: 'login' });
      const login = await browser.follow(req.url);
      const wrong = await browser.submit(login, '/login', { email: user.email, password: 'not the password at all' });
      assert.equal(wrong.status, 401);
      const next = await drive.signIn(browser, user);
      assert.ok(next.asked, 'the right password after a wrong one');
      assert.deepEqual(next.reasons, ['recent_failures']);
      assert.deepEqual(next.shown, ['There were failed attempts to sign in to your account recently.']);
      assert.ok(next.done);
      assert.equal((await drive.signIn(browser, user)).asked, false, 'the completed sign-in cleared the failures');
    });

    it('asks after risk.inactivityDays without a sign-in, on a known device', async () => {
      const { user, browser } = await drive.knownBrowser('inactive');
      await knex()('user_networks').where({ user_id: user.id }).update({ last_seen_at: new Date(Date.now() - 80 * DAY) });
      assert.equal((await drive.signIn(browser, user)).asked, false, '80 days is within the default 90');
      await knex()('user_networks').where({ user_id: user.id }).update({ last_seen_at: new Date(Date.now() - 100 * DAY) });
      const back = await drive.signIn(browser, user, { answer: false });
      assert.ok(back.asked);
      assert.deepEqual(back.reasons, ['inactive']);
      assert.deepEqual(back.shown, ["You haven't signed in for a long time."]);
    });

    it('makes a device known only by a completed second step; the devices page lists it, and forgetting it asks again', async () => {
      const user = await drive.newUser('devices');
      const store = server.server.services.store;
      // Asked, and not answered: the device stays unknown.
      const abandoned = new CookieClient(server.url);
      assert.ok((await drive.signIn(abandoned, user, { answer: false })).asked);
      assert.equal(await store.devices.count(user.id), 0);
      const wrongAnswer = await drive.signIn(abandoned, user, { answer: false });
      const refused = await abandoned.submit(wrongAnswer.page, '/verify', { answer: 'not my pet' });
      assert.equal(refused.status, 401);
      assert.equal(await store.devices.count(user.id), 0, 'a wrong answer makes nothing known');
      assert.deepEqual((await drive.signIn(abandoned, user, { answer: false })).reasons, ['new_device', 'new_network', 'recent_failures']);

      const browser = new CookieClient(server.url);
      const first = await drive.signIn(browser, user);
      assert.ok(first.asked && first.done);
      assert.equal(await store.devices.count(user.id), 1);
      assert.equal((await drive.signIn(browser, user)).asked, false);

      const devices = await browser.follow('/account/devices');
      assert.equal(devices.status, 200, where(devices));
      const current = /<li class="current" data-id="([^"]+)">[\s\S]*?This device[\s\S]*?<\/li>/.exec(devices.body);
      assert.ok(current, 'the device is listed as this device');
      const id = current[1]!;
      const csrf = csrfOf(devices.body);
      const forgotten = await browser.follow('/account/devices/forget', { form: { csrf, id } });
      assert.equal(forgotten.status, 200, where(forgotten));
      assert.doesNotMatch(forgotten.body, new RegExp(`data-id="${id}"`), 'gone from the list');
      assert.equal(await store.devices.count(user.id), 0);
      const forgottenAgain = await browser.follow('/account/devices/forget', { form: { csrf, id } });
      assert.equal(forgottenAgain.status, 400, 'forgetting it twice');

      const after = await drive.signIn(browser, user, { answer: false });
      assert.ok(after.asked, 'a forgotten device is asked again');
      assert.deepEqual(after.reasons, ['new_device']);
    });

    it('ignores X-Forwarded-For from a peer that is not a trusted proxy, both ways', async () => {
      const { user, browser } = await drive.knownBrowser('spoof');
      // A known network does not become unknown by claiming another address.
      const spoofed = await drive.signIn(browser, user, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.equal(spoofed.asked, false, where(spoofed.page));
      // Nor does an unknown one become known: the only known network is now the one claimed.
      await knex()('user_networks').where({ user_id: user.id }).delete();
      await server.server.services.store.networks.record({ userId: user.id, prefix: '203.0.113.0/24' });
      const claimed = await drive.signIn(browser, user, { headers: { 'x-forwarded-for': '203.0.113.9' } });
      assert.ok(claimed.asked);
      assert.deepEqual(claimed.reasons, ['new_network']);
      const prefixes = (await knex()('user_networks').where({ user_id: user.id }).select('prefix')).map((r) => r.prefix as string).sort();
      assert.deepEqual(prefixes, ['127.0.0.0/24', '203.0.113.0/24'], 'the socket address was recorded');
    });

    it('never fails on garbage in X-Forwarded-For', async () => {
      const { user, browser } = await drive.knownBrowser('garbage');
      const mark = server.logText().length;
      for (const value of GARBAGE_XFF) {
        const attempt = await drive.signIn(browser, user, { headers: { 'x-forwarded-for': value } });
        assert.equal(attempt.asked, false, `${value.slice(0, 40)}: the socket address, a known network`);
        assert.ok(attempt.done, `${value.slice(0, 40)}: ${where(attempt.page)}`);
      }
      noServerError(server, mark);
    });
  });

  describe('behind a trusted proxy, with a GeoIP file', () => {
    let server: TestServer;
    let rp: RelyingParty;
    let drive: ReturnType<typeof signInDriver>;
    let dir: string;
    const from = (ip: string) => ({ 'x-forwarded-for': ip });

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'latchkey-geoip-'));
      const geoipFile = path.join(dir, 'dbip-city-lite.csv');
      await writeFile(geoipFile, [
        '198.51.100.0,198.51.100.255,NA,US,California,San Francisco,37.77,-122.42',
        '203.0.113.0,203.0.113.255,EU,DE,Berlin,Berlin,52.52,13.40',
      ].join('\n'));
      server = await startTestServer({ config: { proxy: { trusted: ['127.0.0.1/32', '::1/128'], tlsTerminated: false }, risk: { geoipFile } } });
      await server.server.services.geoip!.ready();
      rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: [REDIRECT] }));
      drive = signInDriver(server, rp);
    });
    after(async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('asks on a known device from a network the user has not used, not from the same /24', async () => {
      const { user, browser } = await drive.knownBrowser('network', from('192.0.2.7'));
      assert.equal((await drive.signIn(browser, user, { headers: from('192.0.2.99') })).asked, false, 'the same /24');
      const moved = await drive.signIn(browser, user, { headers: from('100.64.1.7'), answer: false });
      assert.ok(moved.asked);
      assert.deepEqual(moved.reasons, ['new_network']);
      assert.deepEqual(moved.shown, ["You're signing in from a network you haven't used before."]);
      // The proxy's own address, without a header, is yet another network.
      assert.deepEqual((await drive.signIn(browser, user, { answer: false })).reasons, ['new_network']);
    });

    it('asks for a sign-in from another country shortly after: new country and impossible travel', async () => {
      const { user, browser } = await drive.knownBrowser('travel', from('203.0.113.7'));
      const [berlin] = await server.server.services.store.networks.forUser(user.id);
      assert.equal(berlin?.country, 'DE');
      assert.equal(berlin?.latitude, 52.52);
      assert.equal((await drive.signIn(browser, user, { headers: from('203.0.113.80') })).asked, false, 'Berlin again');
      const far = await drive.signIn(browser, user, { headers: from('198.51.100.7'), answer: false });
      assert.ok(far.asked);
      assert.deepEqual(far.reasons, ['new_network', 'new_country', 'impossible_travel']);
      const { shown } = far;
      assert.ok(shown.includes("You're signing in from a country you haven't signed in from before."), shown.join(' | '));
      assert.ok(shown.includes('This sign-in comes from far away from your last one, too soon to have travelled there.'), shown.join(' | '));
    });

    it('falls back to the proxy address for garbage in X-Forwarded-For: never a crash, never a skipped check', async () => {
      const { user, browser } = await drive.knownBrowser('proxy-garbage', from('192.0.2.7'));
      const mark = server.logText().length;
      for (const value of GARBAGE_XFF) {
        const attempt = await drive.signIn(browser, user, { headers: from(value), answer: false });
        assert.equal(attempt.page.status, 200, `${value.slice(0, 40)}: ${where(attempt.page)}`);
        assert.ok(attempt.asked, `${value.slice(0, 40)}: not the known network`);
        assert.ok(attempt.reasons.includes('new_network'), `${value.slice(0, 40)}: ${attempt.reasons.join(',')}`);
        assert.doesNotMatch(attempt.page.body, /\bat [^\s]+\.ts:\d+/, 'no stack trace');
      }
      noServerError(server, mark);
      const ips = await server.server.services.database.knex('security_events')
        .where({ user_id: user.id, type: 'sign_in.second_step' }).orderBy('id', 'desc').limit(GARBAGE_XFF.length).select('ip');
      for (const { ip } of ips) assert.ok(net.isIP(ip as string), `recorded an address, not ${ip}`);
    });
  });

  describe('the new-device alert', () => {
    let server: TestServer;
    let rp: RelyingParty;
    let mailbox: MailBox;
    let drive: ReturnType<typeof signInDriver>;

    before(async () => {
      mailbox = await startMailBox();
      server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url }, risk: { newDeviceAlert: true } } });
      rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: [REDIRECT] }));
      drive = signInDriver(server, rp);
    });
    after(async () => {
      await server.stop();
      await mailbox.stop();
    });

    const mailsTo = (email: string) => mailbox.messages.filter((m) => m.to.includes(email));
    const silentAt = async (browser: CookieClient) => (await browser.follow((await rp.authorization({ prompt: 'none', scope: 'openid' })).url)).stoppedAt;

    it('sends none for the first device; for a second one a "this wasn\'t me" link that signs out everywhere, once', async () => {
      const { user, browser: owner } = await drive.knownBrowser('alert');
      await sleep(500);
      assert.equal(mailsTo(user.email).length, 0, 'the first device of an account is not news');

      // A sign-in on another device, with a refresh token.
      const intruder = new CookieClient(server.url);
      const since = mailbox.messages.length;
      const other = await drive.signIn(intruder, user, { params: { scope: 'openid offline_access' } });
      assert.ok(other.asked && other.done, where(other.page));
      const tokens = await rp.callback(other.page.stoppedAt!, other.req.checks);
      assert.ok(tokens.refresh_token);
      const mail = await mailbox.next(user.email, { since });
      assert.equal(mail.subject, 'New sign-in to your Latchkey account');
      const link = /https?:\/\/\S+\/not-me\?token=[A-Za-z0-9_-]+/.exec(mail.text)?.[0];
      assert.ok(link, mail.text);
      assert.ok(link.startsWith(`${server.url}/not-me?token=`));
      assert.ok(mail.text.split(/\r?\n/).includes(link), 'the link on a line of its own, after the sentence that names it');
      assert.equal(mailsTo(user.email).length, 1);

      // Opening the link (twice, as a mail scanner might) changes nothing; the button does.
      const reader = new CookieClient(server.url);
      assert.equal((await reader.follow(link)).status, 200);
      const page = await reader.follow(link);
      assert.equal(page.status, 200);
      assert.match(page.body, /<form method="post" action="\/not-me">/);
      assert.match(page.body, /<button type="submit">Sign out everywhere and choose a new password<\/button>/);
      assert.ok(responseParams(await silentAt(intruder)).get('code'), 'the other session still works before the button');

      const intruderDevice = intruder.jar.get('lk.device')!.split('.')[0]!;
      const ownerDevice = owner.jar.get('lk.device')!.split('.')[0]!;
      const done = await reader.submit(page, '/not-me');
      assert.equal(done.status, 200, where(done));
      assert.match(done.url, new RegExp(`^${server.url}/reset/confirm\\?token=[A-Za-z0-9_-]+`));
      assert.match(done.body, /action="\/reset\/confirm"/);
      assert.match(done.body, /name="password"/);
      assert.match(done.body, /Your account was signed out everywhere, and every app must ask you to sign in again/);

      for (const browser of [intruder, owner]) assert.equal(responseParams(await silentAt(browser)).get('error'), 'login_required');
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token), 'invalid_grant');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.refresh_token)).active, false, 'the refresh token is inactive');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is inactive');
      const devices = server.server.services.store.devices;
      assert.equal(await devices.isKnown(user.id, deviceHash(intruderDevice)), false, 'that device is forgotten');
      assert.equal(await devices.isKnown(user.id, deviceHash(ownerDevice)), true, "the owner's device is not");

      const twice = await reader.submit(page, '/not-me');
      assert.equal(twice.status, 410, 'the link works once');
      assert.equal((await reader.follow(link)).status, 410);
      // The other device is a stranger again.
      assert.deepEqual((await drive.signIn(intruder, user, { answer: false })).reasons, ['new_device']);
    });
  });
});
