/**
 * Pairing a phone over /app/api/pair (docs/mobile-app-protocol.md): the code from the account page's
 * enrolment is single use, short-lived and tried a few times per address; the request is signed by the key
 * it pairs; what the phone sends (its key, name and push subscription) is checked before the code is spent.
 * Also the API's edges: JSON errors for unknown routes, methods and bodies, no-store, and no cookies.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createServer, type AddressInfo } from 'node:net';
import { createPushSender } from '../../src/delivery/push.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { PAIR_ATTEMPTS_PER_IP } from '../../src/push/api.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { PushService } from '../helpers/push-service.ts';
import { beginPairing, deviceRow, pairingNumberOf, promptsOf, PUSH_TEST_CONFIG, vapidPublicKey } from '../helpers/push-setup.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('pairing a phone', () => {
  let server: TestServer;
  let push: PushService;
  const knex = () => server.server.services.database.knex;
  /** Each test's attempts start from a clean per-IP count (the limit has its own test). */
  const forgetPairAttempts = () => knex()('counters').where('key', 'like', 'push:pair:%').delete();

  before(async () => {
    [server, push] = await Promise.all([startTestServer({ config: PUSH_TEST_CONFIG }), PushService.start()]);
  });
  after(async () => {
    await Promise.all([server.stop(), push.stop()]);
  });

  it('GET /config is public JSON: the VAPID key and the product name, no-store, no cookie', async () => {
    const res = await fetch(`${server.url}/app/api/config`, { headers: { cookie: 'lk_session=whatever' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('set-cookie'), null);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = (await res.json()) as { vapidPublicKey: string; productName: string };
    assert.match(body.vapidPublicKey, /^[A-Za-z0-9_-]{87}$/, 'an uncompressed P-256 point, base64url');
    assert.equal(body.productName, server.config.productName);
    assert.equal(await vapidPublicKey(server), body.vapidPublicKey, 'the same key every time');
  });

  it('pairs with the code, sends the test prompt to the new phone, and counts it only once it approved', async () => {
    await forgetPairAttempts();
    const user = await server.newUser('pairs');
    const { code } = await beginPairing(server, user.id);
    const device = SoftwareDevice.create(server.url);
    const subscription = push.subscribe({ applicationServerKey: await vapidPublicKey(server) });
    // Typed as a person would: lower case, no dash, spaces.
    const typed = ` ${code.toLowerCase().replace('-', ' ')} `;
    const res = await device.pair(typed, subscription, '  Pixel   8  ');
    assert.equal(res.status, 201, JSON.stringify(res.json));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(res.json.device, { id: res.json.device!.id, name: 'Pixel 8', state: 'pairing' });

    const pushed = await push.waitFor((p) => p.id === subscription.id);
    assert.equal(pushed.status, 201, pushed.refused);
    const listed = await promptsOf(device);
    assert.equal(listed.device.state, 'pairing');
    assert.equal(listed.prompts.length, 1);
    const [test] = listed.prompts;
    assert.equal(test!.kind, 'test');
    assert.equal(test!.numberDigits, server.config.twoStep.push.numberDigits, 'a test prompt asks for the number the account page shows');
    assert.deepEqual(JSON.parse(pushed.plaintext!), { type: 'test', prompt: test!.id });

    const row = await deviceRow(server, { id: res.json.device!.id });
    assert.equal(row.confirmedAt, null, 'not confirmed before its test prompt is approved');
    assert.equal(row.keyId, device.keyId);
    assert.equal(row.vapidKeyId, (await server.server.services.store.pushDevices.vapidKey(() => { throw new Error('made already'); })).id);
    // A phone that paired with a guessed or stolen code cannot finish unseen: the test prompt wants the
    // number only the account page shows.
    const number = await pairingNumberOf(server, user.id);
    assert.equal((await device.request('POST', `/app/api/prompts/${test!.id}/approve`, {})).status, 400, 'no number');
    const wrong = String((Number(number) + 1) % 10 ** number.length).padStart(number.length, '0');
    const refused = await device.request('POST', `/app/api/prompts/${test!.id}/approve`, { number: wrong });
    assert.equal(refused.status, 400, JSON.stringify(refused.json));
    assert.equal((await deviceRow(server, row)).confirmedAt, null, 'a wrong number confirms nothing');
    const approved = await device.request('POST', `/app/api/prompts/${test!.id}/approve`, { number });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    const confirmed = await deviceRow(server, row);
    assert.ok(confirmed.confirmedAt);
    assert.equal(confirmed.state, 'active');
    assert.equal((await promptsOf(device)).prompts.length, 0, 'the test prompt is answered');
  });

  it('pairs without a subscription as an "open the app" phone', async () => {
    await forgetPairAttempts();
    const user = await server.newUser('openapp');
    const { code } = await beginPairing(server, user.id);
    const device = SoftwareDevice.create(server.url);
    const res = await device.pair(code, null, 'iPad');
    assert.equal(res.status, 201, JSON.stringify(res.json));
    const [test] = (await promptsOf(device)).prompts;
    assert.equal((await device.request('POST', `/app/api/prompts/${test!.id}/approve`, { number: await pairingNumberOf(server, user.id) })).status, 200);
    assert.equal((await deviceRow(server, res.json.device!)).state, 'open-app');
  });

  it('refuses a wrong code, a used code and an expired code (404 unknown_code)', async () => {
    await forgetPairAttempts();
    const user = await server.newUser('codes');
    const { code } = await beginPairing(server, user.id);
    const wrong = code.startsWith('A') ? `B${code.slice(1)}` : `A${code.slice(1)}`;
    const refused = await SoftwareDevice.create(server.url).pair(wrong);
    assert.equal(refused.status, 404);
    assert.equal(refused.json.error, 'unknown_code');
    assert.match(String((refused.json as { message?: unknown }).message), /code/);
    assert.equal((await SoftwareDevice.create(server.url).pair('not a code')).json.error, 'unknown_code');

    assert.equal((await SoftwareDevice.create(server.url).pair(code)).status, 201);
    const reused = await SoftwareDevice.create(server.url).pair(code);
    assert.equal(reused.status, 404, 'single use');
    assert.equal(reused.json.error, 'unknown_code');

    const later = await beginPairing(server, user.id);
    await knex()('one_time_codes').where({ purpose: 'push_pair', user_id: user.id }).whereNull('used_at').update({ expires_at: new Date(Date.now() - 1000) });
    const expired = await SoftwareDevice.create(server.url).pair(later.code);
    assert.equal(expired.status, 404);
    assert.equal(expired.json.error, 'unknown_code');
    assert.equal((await knex()('push_devices').where({ user_id: user.id })).length, 1, 'only the one good pairing made a device');
  });

  it('refuses a key id that is not the thumbprint of the key in the body, and a private JWK, without spending the code', async () => {
    await forgetPairAttempts();
    const user = await server.newUser('keys');
    const { code } = await beginPairing(server, user.id);
    const device = SoftwareDevice.create(server.url);
    const other = SoftwareDevice.create(server.url);

    // Signed by the device's key, but naming another key id.
    const foreignId = await device.pair(code, null, 'Phone', { keyId: other.keyId });
    assert.equal(foreignId.status, 401);
    assert.equal(foreignId.json.error, 'unknown_device');
    // The body's key is another one than the one that signed (the key id is the body key's thumbprint).
    const swapped = await device.request('POST', '/app/api/pair', { code, publicKey: other.jwk, name: 'Phone', subscription: null }, { keyId: other.keyId });
    assert.equal(swapped.status, 401);
    assert.equal(swapped.json.error, 'bad_signature');
    // A private key sent as the public one.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privateJwk = privateKey.export({ format: 'jwk' });
    const withD = await device.request('POST', '/app/api/pair', { code, publicKey: privateJwk, name: 'Phone', subscription: null });
    assert.equal(withD.status, 400);
    assert.equal(withD.json.error, 'invalid_request');

    const honest = await device.pair(code, null, 'Phone');
    assert.equal(honest.status, 201, 'the code survived the refused attempts');
  });

  it('refuses a bad name and a bad subscription (400) without spending the code', async () => {
    await forgetPairAttempts();
    const user = await server.newUser('inputs');
    const { code } = await beginPairing(server, user.id);
    const device = SoftwareDevice.create(server.url);
    for (const name of ['', '   ', 'x'.repeat(61), 'evil\u202Egnp.exe', 'tab\u0007bell']) {
      const res = await device.pair(code, null, name);
      assert.equal(res.status, 400, `name ${JSON.stringify(name)}`);
      assert.equal(res.json.error, 'invalid_request');
    }
    const good = push.subscribe();
    for (const subscription of [
      { endpoint: 'not a url', keys: good.keys },
      { endpoint: good.endpoint, keys: { p256dh: 'short', auth: good.keys.auth } },
      { endpoint: 'ftp://push.example.com/x', keys: good.keys },
      'a string',
    ]) {
      const res = await device.pair(code, subscription, 'Phone');
      assert.equal(res.status, 400, JSON.stringify(subscription));
      assert.equal(res.json.error, 'bad_subscription');
    }
    const notJson = await device.request('POST', '/app/api/pair', '{"code": ', {});
    assert.equal(notJson.status, 400);
    assert.equal(notJson.json.error, 'invalid_request');
    await forgetPairAttempts(); // ten refusals: the per-IP limit (its own test)
    assert.equal((await device.pair(code, null, 'x'.repeat(60))).status, 201, 'the code survived, and 60 characters is a fine name');
  });

  it(`refuses the ${PAIR_ATTEMPTS_PER_IP + 1}th attempt from one address (429, before the code is looked at); pairing itself does not count`, async () => {
    await forgetPairAttempts();
    const user = await server.newUser('brute');
    const first = await beginPairing(server, user.id);
    assert.equal((await SoftwareDevice.create(server.url).pair(first.code)).status, 201, 'a pairing is given back');
    const { code } = await beginPairing(server, user.id);
    const guesses = await Promise.all(Array.from({ length: PAIR_ATTEMPTS_PER_IP + 5 }, (_, i) =>
      SoftwareDevice.create(server.url).pair(`ZZZZ-${String(i).padStart(4, '0')}`)));
    assert.equal(guesses.filter((g) => g.status === 404).length, PAIR_ATTEMPTS_PER_IP, 'as many guesses as the limit');
    const limited = guesses.filter((g) => g.status === 429);
    assert.equal(limited.length, 5);
    assert.equal(limited[0]!.json.error, 'too_many_attempts');
    assert.ok(Number(limited[0]!.headers.get('retry-after')) > 0);
    const right = await SoftwareDevice.create(server.url).pair(code);
    assert.equal(right.status, 429, 'even the right code waits: the limit is checked before the code');
  });

  it('answers JSON for unknown routes (404), wrong methods (405), bodies too large (413) and unsigned calls (401)', async () => {
    await forgetPairAttempts();
    const unknown = await fetch(`${server.url}/app/api/nothing-here`, { headers: { accept: 'text/html' } });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: string }).error, 'not_found');
    assert.equal(unknown.headers.get('cache-control'), 'no-store');
    const wrongMethod = await fetch(`${server.url}/app/api/config`, { method: 'POST' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(((await wrongMethod.json()) as { error: string }).error, 'method_not_allowed');
    const device = SoftwareDevice.create(server.url);
    const huge = await device.request('POST', '/app/api/pair', { code: 'x', publicKey: device.jwk, name: 'y'.repeat(9000), subscription: null });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.error, 'too_large');
    const unsigned = await fetch(`${server.url}/app/api/prompts`, { headers: { cookie: 'anything=1' } });
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as { error: string }).error, 'bad_signature');
    assert.equal(unsigned.headers.get('set-cookie'), null);
    const german = await fetch(`${server.url}/app/api/prompts`, { headers: { 'accept-language': 'de' } });
    assert.match(((await german.json()) as { message: string }).message, /signiert/, 'the message in the language asked for');
  });

  it('refuses a loopback or private push endpoint unless the test setting allows it', () => {
    const config = loadConfig({ env: {}, overrides: { env: 'test' } });
    assert.equal(config.twoStep.push.allowInsecureEndpoints, false, 'the shipped default');
    const sender = createPushSender(config, createLogger('silent'));
    for (const endpoint of ['http://127.0.0.1:8080/push/x', 'https://127.0.0.1/push/x', 'https://[::1]/push', 'https://10.0.0.8/push',
      'https://localhost/push', 'https://169.254.169.254/latest', 'http://fcm.googleapis.com/fcm/send/x', 'https://user:pw@push.example.com/x']) {
      assert.equal(sender.endpointAllowed(endpoint), false, endpoint);
    }
    assert.equal(sender.endpointAllowed('https://fcm.googleapis.com/fcm/send/abc'), true);
    assert.equal(sender.endpointAllowed('https://updates.push.services.mozilla.com/wpush/v2/abc'), true);
    const testing = createPushSender(loadConfig({ env: {}, overrides: { env: 'test', ...PUSH_TEST_CONFIG } }), createLogger('silent'));
    assert.equal(testing.endpointAllowed(push.endpoint('x')), true);
  });

  it('connects only to the public address it checked: a push service name that resolves to an internal address gets nothing', async () => {
    // A listener on loopback stands for an internal service; the push service's name resolves to it (as a
    // name that rebinds after a check would). The resolver is the one the connection itself uses.
    let connections = 0;
    const internal = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    const { port } = internal.address() as AddressInfo;
    const rebinding = ((_host: string, _options: object, callback: (err: null, addresses: { address: string; family: number }[]) => void) =>
      callback(null, [{ address: '127.0.0.1', family: 4 }])) as unknown as typeof import('node:dns').lookup;
    const sender = createPushSender(loadConfig({ env: {}, overrides: { env: 'test' } }), createLogger('silent'), rebinding);
    const subscription = push.subscribe();
    const target = { ...subscription, endpoint: `https://push.example.com:${port}/push/${subscription.id}` };
    assert.equal(sender.endpointAllowed(target.endpoint), true, 'the name itself looks public');
    const vapid = (await import('web-push')).default.generateVAPIDKeys();
    assert.equal(await sender.send(target, { type: 'prompt', prompt: 'x' }, { ttlSeconds: 60, vapid }), 'failed');
    assert.equal(connections, 0, 'no connection was made to the internal address');
    await new Promise((resolve) => internal.close(resolve));
  });
});
