/**
 * The phone app's signed requests (docs/mobile-app-protocol.md, "Signed requests"), attacked: every call
 * but GET /config carries a signature by the device key over the method, the absolute URL, the time, a
 * nonce and the body. Replays (on one instance or across two sharing the database), stale and future
 * times, unknown and signed-out keys, tampered bodies, URLs and methods, and other keys' signatures are
 * refused with 401 JSON, in the documented order, and logged without the signature.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { pairPhone, PUSH_TEST_CONFIG, type PairedPhone } from '../helpers/push-setup.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('signed requests from the phone app', () => {
  let a: TestServer;
  let b: TestServer;
  let phone: PairedPhone;
  let userId: string;

  before(async () => {
    a = await startTestServer({ config: PUSH_TEST_CONFIG });
    // A second instance on the same database and issuer, as behind a load balancer.
    b = await startTestServer({ db: a.db, config: { ...PUSH_TEST_CONFIG, issuer: a.url } });
    userId = (await a.newUser('signer')).id;
    phone = await pairPhone(a, userId);
  });
  after(async () => {
    await b.stop();
    await a.stop();
  });

  const error = (res: { status: number; json: Record<string, unknown>; headers: Headers }, code: string) => {
    assert.equal(res.status, 401, JSON.stringify(res.json));
    assert.equal(res.json.error, code);
    assert.equal(typeof res.json.message, 'string');
    assert.equal(res.headers.get('cache-control'), 'no-store');
  };

  it('accepts an honest request, on either instance', async () => {
    assert.equal((await phone.device.request('GET', '/app/api/prompts')).status, 200);
    const viaB = phone.device.signRequest('GET', '/app/api/prompts');
    const res = await fetch(viaB.url.replace(a.url, b.url), { headers: viaB.headers });
    assert.equal(res.status, 200, 'B checks the signature over the issuer\'s URL, not its own address');
  });

  it('refuses a replayed nonce, also when the replay goes to the other instance', async () => {
    const first = await phone.device.request('GET', '/app/api/prompts');
    assert.equal(first.status, 200);
    const nonce = phone.device.nonces.at(-1)!;
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { nonce }), 'replayed');

    // One signed request, sent ten times to each instance at once: exactly one is answered.
    const signed = phone.device.signRequest('POST', '/app/api/subscription', { subscription: null });
    const send = (base: string) => fetch(signed.url.replace(a.url, base), { method: 'POST', headers: signed.headers, body: signed.body });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => send(i % 2 ? b.url : a.url)));
    assert.deepEqual(answers.map((r) => r.status).sort(), [200, ...Array<number>(19).fill(401)]);
    const refusals = await Promise.all(answers.filter((r) => r.status === 401).map((r) => r.json() as Promise<{ error: string }>));
    assert.ok(refusals.every((r) => r.error === 'replayed'));
  });

  it('refuses a time more than 60 s in the past or the future, and accepts one just inside', async () => {
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { time: Date.now() - 61_000 }), 'stale_time');
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { time: Date.now() + 61_000 }), 'stale_time');
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { time: '1e15' }), 'bad_signature');
    assert.equal((await phone.device.request('GET', '/app/api/prompts', undefined, { time: Date.now() - 50_000 })).status, 200);
    assert.equal((await phone.device.request('GET', '/app/api/prompts', undefined, { time: Date.now() + 50_000 })).status, 200);
  });

  it('refuses an unknown key, a signature by another key, and a key id that names another device', async () => {
    const stranger = SoftwareDevice.create(a.url);
    error(await stranger.request('GET', '/app/api/prompts'), 'unknown_device');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { signWith: privateKey }), 'bad_signature');
    // The stranger signs with its own key but claims to be the phone.
    error(await stranger.request('GET', '/app/api/prompts', undefined, { keyId: phone.device.keyId }), 'bad_signature');
  });

  it('refuses a body changed after signing, and a signature over another method or URL', async () => {
    const body = { subscription: null };
    error(await phone.device.request('POST', '/app/api/subscription', body, { tamperBody: JSON.stringify({ subscription: null, x: 1 }) }), 'bad_signature');
    error(await phone.device.request('POST', '/app/api/sign-out', undefined, { signedMethod: 'GET' }), 'bad_signature');
    error(await phone.device.request('POST', '/app/api/sign-out', undefined, { signedUrl: `${a.url}/app/api/prompts` }), 'bad_signature');
    error(await phone.device.request('GET', '/app/api/prompts?x=1', undefined, { signedUrl: `${a.url}/app/api/prompts` }), 'bad_signature');
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { signedUrl: `http://evil.example/app/api/prompts` }), 'bad_signature');
    assert.equal((await phone.device.request('GET', '/app/api/prompts?x=1')).status, 200, 'the query is part of what is signed');
  });

  it('refuses a request missing a header or with a malformed one', async () => {
    for (const name of ['Latchkey-Device', 'Latchkey-Time', 'Latchkey-Nonce', 'Latchkey-Signature'] as const) {
      error(await phone.device.request('GET', '/app/api/prompts', undefined, { omit: [name] }), 'bad_signature');
    }
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { nonce: 'short' }), 'bad_signature');
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { nonce: 'x'.repeat(65) }), 'bad_signature');
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { signature: 'AAAA' }), 'bad_signature');
  });

  it('checks in the documented order: time, then key, then nonce, then signature', async () => {
    const stranger = SoftwareDevice.create(a.url);
    error(await stranger.request('GET', '/app/api/prompts', undefined, { time: Date.now() - 120_000 }), 'stale_time');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    // A badly signed request spends its nonce (recorded before the signature is checked)...
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { signWith: privateKey }), 'bad_signature');
    const burnt = phone.device.nonces.at(-1)!;
    // ...so the same nonce, now honestly signed, is a replay.
    error(await phone.device.request('GET', '/app/api/prompts', undefined, { nonce: burnt }), 'replayed');
  });

  it('logs refusals with their reason and key id, never the signature', async () => {
    const res = await phone.device.request('GET', '/app/api/prompts', undefined, { time: Date.now() - 90_000 });
    error(res, 'stale_time');
    const log = a.logText();
    assert.match(log, /"reason":"stale_time"/);
    assert.ok(phone.device.nonces.length > 0);
    for (const nonce of phone.device.nonces) assert.ok(!log.includes(nonce), 'no nonce in the log');
  });

  it('refuses the key of a phone that signed out, and of a disabled account', async () => {
    const other = await pairPhone(a, userId, { name: 'Second phone' });
    const out = await other.device.request('POST', '/app/api/sign-out');
    assert.equal(out.status, 200);
    assert.deepEqual(out.json, { status: 'signed-out' });
    error(await other.device.request('GET', '/app/api/prompts'), 'unknown_device');
    error(await other.device.request('POST', '/app/api/subscription', { subscription: null }), 'unknown_device');
    const event = await a.server.services.database.knex('security_events').where({ user_id: userId, type: 'push.signed_out' }).first();
    assert.ok(event, 'signing out is a security event');

    const disabled = await a.newUser('disabled');
    const theirs = await pairPhone(a, disabled.id);
    await a.server.services.database.knex('users').where({ id: disabled.id }).update({ status: 'disabled' });
    error(await theirs.device.request('GET', '/app/api/prompts'), 'unknown_device');
  });
});
