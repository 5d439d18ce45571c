/**
 * What reaches the push service (docs/mobile-app-protocol.md, "Push messages"), read by a local RFC 8030
 * service that checks VAPID and decrypts: aes128gcm, TTL the prompt's seconds left, Urgency high, a VAPID
 * JWT for the service's origin that expires within 24 h, and a payload of only {type, prompt}. A 410 drops
 * the subscription; nothing secret reaches the log; `latchkey keys rotate --vapid` makes phones subscribe
 * again, and until they do they are asked while open (a push signed with the new key would be refused);
 * the purge takes old nonces and pairings never finished.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../../src/admin/commands.ts';
import { purgeExpired } from '../../src/maintenance.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { PushService } from '../helpers/push-service.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import {
  beginPairing, deviceRow, numberOf, promptsOf, PUSH_TEST_CONFIG, signInToPrompt, userWithPhone, vapidPublicKey,
} from '../helpers/push-setup.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('delivering prompts to the push service', () => {
  let server: TestServer;
  let push: PushService;
  let rp: RelyingParty;
  const knex = () => server.server.services.database.knex;
  const cli = (argv: string[]) => runCommand(argv, server.server.services, { stdin: async () => '' });
  /** Each sign-in here is a new user's, so only the IP cap is shared: cleared per test. */
  const forgetIp = () => knex()('counters').where('key', 'like', 'push:ip:%').delete();

  before(async () => {
    push = await PushService.start();
    server = await startTestServer({ config: PUSH_TEST_CONFIG, logLevel: 'debug' });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Courier', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(async () => {
    await Promise.all([server.stop(), push.stop()]);
  });

  it('sends an encrypted push with TTL = the seconds left, Urgency high, a VAPID JWT under 24 h, and only {type, prompt} inside', async () => {
    await forgetIp();
    const user = await userWithPhone(server, 'courier', { push });
    const started = Math.floor(Date.now() / 1000);
    await signInToPrompt(server, rp, user);
    const [prompt] = (await promptsOf(user.phone.device)).prompts;
    const received = await push.waitFor((p) => p.id === user.phone.subscription!.id && !!p.plaintext?.includes(prompt!.id));
    assert.equal(received.status, 201, received.refused);
    assert.equal(received.encoding, 'aes128gcm');
    assert.equal(received.urgency, 'high');
    const ttl = server.config.twoStep.push.promptTtlSeconds;
    const secondsLeft = Math.floor((Date.parse(prompt!.expiresAt) - Date.now()) / 1000);
    assert.ok(received.ttl! <= ttl && received.ttl! >= secondsLeft - 2, `TTL ${received.ttl} for ${secondsLeft} s left`);
    assert.equal(received.vapid!.aud, push.origin);
    const exp = Number(received.vapid!.exp);
    // Within RFC 8292's 24 h, and no longer than the message could wait plus five minutes.
    assert.ok(exp > started && exp <= started + ttl + 300 + 5, `VAPID exp ${exp - started} s ahead`);
    assert.equal(received.vapid!.k, await vapidPublicKey(server));
    assert.deepEqual(JSON.parse(received.plaintext!), { type: 'prompt', prompt: prompt!.id }, 'nothing but the type and the id');
    assert.ok(!(received.headers['content-length'] === undefined), 'a body was sent');
  });

  it('drops the subscription when the push service answers 410: the phone is asked while open from then on', async () => {
    await forgetIp();
    const user = await userWithPhone(server, 'gone', { push });
    push.markGone(user.phone.subscription!.id);
    await signInToPrompt(server, rp, user);
    await push.waitFor((p) => p.id === user.phone.subscription!.id && p.status === 410);
    const row = await deviceRow(server, user.phone);
    assert.equal(row.subscription, undefined, 'the dead subscription is forgotten');
    assert.equal(row.state, 'open-app');
    assert.equal(row.vapidKeyId, null);
    const { device, prompts } = await promptsOf(user.phone.device);
    assert.equal(device.state, 'open-app');
    assert.equal(prompts.length, 1, 'the prompt still waits for the app to be opened');
  });

  it('writes no secret to the log (debug level): no pairing code, number, subscription keys or endpoint, password', async () => {
    await forgetIp();
    const user = await userWithPhone(server, 'quiet', { push });
    const { device, code, subscription } = { ...user.phone, subscription: user.phone.subscription! };
    const { page } = await signInToPrompt(server, rp, user);
    const number = await numberOf(server, user.id, page);
    const [prompt] = (await promptsOf(device)).prompts;
    const wrong = String((Number(number) + 1) % 1000).padStart(3, '0');
    await device.request('POST', `/app/api/prompts/${prompt!.id}/approve`, { number: wrong });
    await device.request('POST', `/app/api/prompts/${prompt!.id}/approve`, { number });
    await push.waitFor((p) => p.id === subscription.id && !!p.plaintext?.includes(prompt!.id));

    const log = server.logText();
    assert.match(log, /prompt sent/, 'the log is captured (and at debug level)');
    assert.match(log, /"level":20/, 'debug lines are there');
    for (const [what, secret] of [
      ['pairing code', code], ['pairing code, plain', code.replace('-', '')], ['number', `"${number}"`], ['wrong number', `"${wrong}"`],
      ['p256dh', subscription.keys.p256dh], ['auth secret', subscription.keys.auth], ['endpoint', subscription.id], ['password', user.password],
    ] as const) {
      assert.ok(!log.includes(secret), `the ${what} is not in the log`);
    }
  });

  it('rotates the VAPID key from the CLI (audited); phones on the old key are asked while open until they subscribe again', async () => {
    await forgetIp();
    const user = await userWithPhone(server, 'rotate', { push });
    const oldKey = await vapidPublicKey(server);
    const refused = await cli(['keys', 'rotate', '--vapid', '--alg', 'ES256']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--vapid/);
    const rotated = await cli(['keys', 'rotate', '--vapid', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { vapid } = JSON.parse(rotated.stdout) as { vapid: { id: string; publicKey: string } };
    assert.notEqual(vapid.publicKey, oldKey);
    assert.doesNotMatch(rotated.stdout, /privateKey/);
    assert.equal(await vapidPublicKey(server), vapid.publicKey);
    const audit = await knex()('audit_log').where({ action: 'keys.rotate_vapid' }).orderBy('seq', 'desc').first();
    assert.deepEqual([audit.actor_type, audit.result, audit.target_type, audit.target_id], ['cli', 'ok', 'vapid_key', vapid.id]);
    const denied = await knex()('audit_log').where({ action: 'keys.rotate_vapid', result: 'error' }).first();
    assert.equal(denied, undefined);

    // The phone's subscription was made with the old key: its push service would refuse the new one (403).
    const sentBefore = push.received.length;
    await signInToPrompt(server, rp, user);
    const listed = await promptsOf(user.phone.device);
    assert.equal(listed.vapidPublicKey, vapid.publicKey, 'the phone sees the new key');
    assert.equal(listed.prompts.length, 1, 'and finds the prompt while open');
    assert.deepEqual(push.received.slice(sentBefore).filter((p) => p.id === user.phone.subscription!.id), [], 'nothing pushed with a key the subscription was not made with');

    // It subscribes again with the new key; the next prompt is pushed, signed by the new key.
    const fresh = push.subscribe({ applicationServerKey: vapid.publicKey });
    const res = await user.phone.device.request('POST', '/app/api/subscription', { subscription: fresh });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal((res.json as { device: { state: string } }).device.state, 'active');
    assert.equal((await deviceRow(server, user.phone)).vapidKeyId, vapid.id);
    await knex()('counters').where({ key: `push:interval:${user.id}` }).delete();
    await signInToPrompt(server, rp, user);
    const pushed = await push.waitFor((p) => p.id === fresh.id);
    assert.equal(pushed.status, 201, pushed.refused);
    assert.equal(pushed.vapid!.k, vapid.publicKey);
  });

  it('drops the subscription on request (an "open the app" phone) and refuses one it may not push to', async () => {
    const user = await userWithPhone(server, 'unsub', { push });
    const bad = await user.phone.device.request('POST', '/app/api/subscription', { subscription: { endpoint: 'ftp://x', keys: user.phone.subscription!.keys } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'bad_subscription');
    const none = await user.phone.device.request('POST', '/app/api/subscription', { subscription: null });
    assert.equal(none.status, 200);
    const row = await deviceRow(server, user.phone);
    assert.equal(row.state, 'open-app');
    assert.equal(row.subscription, undefined);
    const missing = await user.phone.device.request('POST', '/app/api/subscription', {});
    assert.equal(missing.status, 400, 'the field is required (null for none)');
  });

  it('purges nonces past their window and pairings never finished within a day', async () => {
    const user = await server.newUser('purge');
    const { code } = await beginPairing(server, user.id);
    const device = SoftwareDevice.create(server.url);
    const paired = await device.pair(code, null, 'Abandoned');
    assert.equal(paired.status, 201);
    await knex()('push_devices').where({ id: paired.json.device!.id }).update({ created_at: new Date(Date.now() - 2 * 86400_000) });
    await knex()('device_nonces').where({ key_id: device.keyId }).update({ expires_at: new Date(Date.now() - 1000) });
    const counts = await purgeExpired(server.server.services);
    assert.ok(counts.pushDevices! >= 2);
    assert.equal(await knex()('push_devices').where({ id: paired.json.device!.id }).first(), undefined);
    assert.equal((await knex()('device_nonces').where({ key_id: device.keyId })).length, 0);
  });
});
