/**
 * Phones paired for mobile app prompts, for suites that need "a user with a paired, confirmed phone": a
 * SoftwareDevice pairs through the real API (/app/api/pair with the code the enrolment issued), answers its
 * test prompt through the real API, and the enrolment is finished by the push factor itself
 * (factors/push.ts `enroll.begin` and `enroll.finish`, what the account page calls), without the page.
 * Also: a sign-in parked at its push prompt, and the number that sign-in shows.
 */
import assert from 'node:assert/strict';
import { factorContext } from '../../src/factors/index.ts';
import { push as pushFactor } from '../../src/factors/push.ts';
import { isStep, type Pending } from '../../src/factors/types.ts';
import type { PushDevice } from '../../src/store/push-devices.ts';
import { CookieClient, type Page } from './browser.ts';
import { SoftwareDevice } from './push-device.ts';
import type { PushService, SoftwareSubscription } from './push-service.ts';
import type { RelyingParty } from './rp.ts';
import type { TestServer } from './server.ts';
import { addQuestion } from './two-step.ts';

/** The config every push suite starts its server with: the local push service is http on loopback. */
export const PUSH_TEST_CONFIG = { twoStep: { push: { allowInsecureEndpoints: true } } };

export interface PairedPhone {
  device: SoftwareDevice;
  /** push_devices.id */
  id: string;
  authenticatorId: string;
  /** The push subscription it paired with (none: an "open the app" phone). */
  subscription: SoftwareSubscription | undefined;
  /** The pairing code it used (spent). */
  code: string;
}

export interface PromptJson {
  id: string;
  kind: 'sign-in' | 'test' | 'ciba';
  client: { name: string; logoUrl: string | null };
  browser: string;
  os: string;
  place: { ip: string; country: string | null };
  createdAt: string;
  expiresAt: string;
  bindingMessage: string | null;
  numberDigits: number | null;
}

export interface PromptsJson {
  device: { id: string; name: string; state: string };
  vapidPublicKey: string;
  prompts: PromptJson[];
}

const services = (server: TestServer) => server.server.services;

/** The enrolment's first step, as the account page starts it: the pairing code (and the step that holds it). */
export async function beginPairing(server: TestServer, userId: string): Promise<{ code: string; pending: Pending<'push'> }> {
  const s = services(server);
  const user = (await s.store.users.findById(userId))!;
  const step = await pushFactor.enroll.begin(user, factorContext(s));
  const row = await s.store.pending.put({ ...step, binding: `account:test-${userId}`, userId });
  return { code: step.secret!, pending: { ...row, userId, kind: 'push' } };
}

/** The device's live prompts (GET /app/api/prompts), asserted 200. */
export async function promptsOf(device: SoftwareDevice): Promise<PromptsJson> {
  const res = await device.request<PromptsJson>('GET', '/app/api/prompts');
  assert.equal(res.status, 200, JSON.stringify(res.json));
  return res.json;
}

/**
 * Pairs a new SoftwareDevice with the user through the real API (subscribed at `push` when given, else an
 * "open the app" phone), approves its test prompt, and finishes the enrolment with the push factor: the
 * method exists and the phone gets prompts.
 */
export async function pairPhone(server: TestServer, userId: string, opts: { push?: PushService; name?: string } = {}): Promise<PairedPhone> {
  const s = services(server);
  const { code, pending } = await beginPairing(server, userId);
  const device = SoftwareDevice.create(server.url);
  const subscription = opts.push?.subscribe({ applicationServerKey: await vapidPublicKey(server) });
  const paired = await device.pair(code, subscription ?? null, opts.name ?? 'Test phone');
  assert.equal(paired.status, 201, JSON.stringify(paired.json));
  const { prompts } = await promptsOf(device);
  const test = prompts.find((p) => p.kind === 'test');
  assert.ok(test, 'the test prompt waits for the new phone');
  const number = await pairingNumberOf(server, userId);
  const approved = await device.request('POST', `/app/api/prompts/${test.id}/approve`, { number });
  assert.equal(approved.status, 200, JSON.stringify(approved.json));
  const user = (await s.store.users.findById(userId))!;
  const method = await pushFactor.enroll.finish(pending, {}, user, factorContext(s));
  assert.ok(!isStep(method), 'the enrolment made the method');
  return { device, id: paired.json.device!.id, authenticatorId: method.id, subscription, code };
}

/**
 * The number a pairing's test prompt asks for, as the account page shows it (factors/push.ts reads the
 * waiting test prompt's sealed secret): the user's one waiting pairing.
 */
export async function pairingNumberOf(server: TestServer, userId: string): Promise<string> {
  const waiting = await services(server).store.pending.waitingFor(userId, 'push');
  const test = waiting.find((row) => row.data.purpose === 'test');
  assert.ok(test?.secret, 'a pairing waits for its number');
  return test.secret;
}

/** The server's current VAPID public key (GET /app/api/config). */
export async function vapidPublicKey(server: TestServer): Promise<string> {
  const res = await fetch(`${server.url}/app/api/config`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { vapidPublicKey: string }).vapidPublicKey;
}

/** The stored row of a paired phone. */
export async function deviceRow(server: TestServer, phone: { id: string }): Promise<PushDevice> {
  const all = await server.server.services.database.knex('push_devices').where({ id: phone.id }).first('user_id');
  const devices = await services(server).store.pushDevices.listForUser(all.user_id as string);
  return devices.find((d) => d.id === phone.id)!;
}

/** A user with a password, a security question and a paired, confirmed phone. */
export async function userWithPhone(server: TestServer, prefix: string, opts: { push?: PushService; name?: string } = {}) {
  const s = services(server);
  const user = await server.newUser(prefix);
  await addQuestion(s.store, (a) => s.hasher.hash(a), user.id);
  const phone = await pairPhone(server, user.id, opts);
  return { ...user, phone };
}

/**
 * A sign-in through `rp` (asking for mfa) parked at its second step, the push prompt sent, with the page it
 * shows and the checks the app redeems its code with.
 */
export async function signInToPrompt(server: TestServer, rp: RelyingParty, user: { email: string; password: string }) {
  const browser = new CookieClient(server.url);
  const { url, checks } = await rp.authorization({ acr_values: 'urn:latchkey:acr:mfa' });
  const login = await browser.follow(url);
  const page: Page = await browser.submit(login, '/login', user);
  const uid = /\/interaction\/([^/?]+)/.exec(page.url)?.[1];
  assert.ok(uid, `at the interaction, got ${page.status} at ${page.url}`);
  return { browser, page, uid, checks };
}

/**
 * Pairs a new SoftwareDevice through the account page, as a person does: signed in to /account (`browser`,
 * with the security question in place), "Mobile app prompts" shows the code, the phone pairs with it and
 * approves its test prompt, and the page's Continue makes the method. Returns the phone and the page after.
 */
export async function pairThroughAccountPage(server: TestServer, browser: CookieClient, opts: { push?: PushService; name?: string } = {}) {
  const page = await browser.follow('/account/two-step/push');
  assert.equal(page.status, 200, `the pairing page, got ${page.status} at ${page.url}`);
  const code = /id="push-code">([^<]+)</.exec(page.body)?.[1];
  assert.ok(code, 'the page shows the pairing code');
  const device = SoftwareDevice.create(server.url);
  const subscription = opts.push?.subscribe({ applicationServerKey: await vapidPublicKey(server) });
  const paired = await device.pair(code, subscription ?? null, opts.name ?? 'Test phone');
  assert.equal(paired.status, 201, JSON.stringify(paired.json));
  const test = (await promptsOf(device)).prompts.find((p) => p.kind === 'test');
  assert.ok(test, 'the test prompt waits for the new phone');
  // The number comes from the account page (its status, as push-pair.js reads it), as the person reads it.
  const statusUrl = /data-status="([^"]+)"/.exec(page.body)?.[1]?.replace(/&amp;/g, '&');
  assert.ok(statusUrl, 'the page asks for its status');
  const status = JSON.parse((await browser.request(statusUrl, { headers: { accept: 'application/json' } })).body) as { state: string; number?: string };
  assert.equal(status.state, 'paired');
  assert.match(status.number ?? '', /^\d+$/, 'the page shows the number to type on the phone');
  assert.equal((await device.request('POST', `/app/api/prompts/${test.id}/approve`, { number: status.number })).status, 200);
  const done = await browser.submit(page, '/account/two-step/push');
  assert.equal(done.status, 200, done.body.slice(0, 300));
  const row = (await services(server).store.pushDevices.findByKey(device.keyId))!;
  assert.ok(row.authenticatorId, 'the method was made');
  return { device, id: row.id, authenticatorId: row.authenticatorId, subscription, code, page: done };
}

/**
 * The number a sign-in's prompt asks for, as the sign-in page shows it: read from the page when it shows
 * one, else from the stored step (the page's own view, factors/push.ts `view`, shows the step's secret).
 */
export async function numberOf(server: TestServer, userId: string, page?: Page): Promise<string> {
  const shown = page ? /data-number="(\d+)"|class="push-number"[^>]*>\s*(\d+)/.exec(page.body) : null;
  if (shown) return (shown[1] ?? shown[2])!;
  const [row] = (await services(server).store.pending.waitingFor(userId, 'push')).filter((r) => r.data.purpose === 'sign-in');
  assert.ok(row?.secret, 'a sign-in prompt waits');
  return row.secret;
}
