/**
 * CIBA (OpenID Client-Initiated Backchannel Authentication) on the phone app's approval, end to end: a
 * confidential client registered with the CLI's own command, openid-client's CIBA functions against a real
 * server, and a phone paired through the real signed app API (test/helpers/push-setup.ts) that answers
 * the prompt through that API.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { runCommand } from '../../src/admin/commands.ts';
import { decodeJwt } from '../helpers/jwt.ts';
import { pairPhone, promptsOf, userWithPhone, type PairedPhone, type PromptJson } from '../helpers/push-setup.ts';
import { PushService } from '../helpers/push-service.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const CIBA = 'urn:openid:params:grant-type:ciba';
const ONE_FACTOR = 'urn:latchkey:acr:1fa';

interface CibaClient {
  clientId: string;
  clientSecret: string;
  metadata: Record<string, unknown>;
  config: oidc.Configuration;
}

interface Reply {
  status: number;
  json: Record<string, unknown>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** DER, just enough of it for one self-signed certificate. */
const der = (tag: number, ...parts: Buffer[]): Buffer => {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
};
const oid = (dotted: string): Buffer => {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [a! * 40 + b!];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift((x & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
};
const utcTime = (d: Date) => der(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`));

/** A self-signed P-256 certificate for localhost and 127.0.0.1 (PEM), and its key (PEM). */
function selfSignedCertificate(): { cert: string; key: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecdsaSha256 = der(0x30, oid('1.2.840.10045.4.3.2'));
  const name = der(0x30, der(0x31, der(0x30, oid('2.5.4.3'), der(0x0c, Buffer.from('localhost')))));
  const altNames = der(0x30, der(0x87, Buffer.from([127, 0, 0, 1])), der(0x82, Buffer.from('localhost')));
  const tbs = der(0x30,
    der(0xa0, der(0x02, Buffer.from([2]))), der(0x02, Buffer.from([1])), ecdsaSha256, name,
    der(0x30, utcTime(new Date(Date.now() - 60_000)), utcTime(new Date(Date.now() + 86_400_000))), name,
    publicKey.export({ type: 'spki', format: 'der' }),
    der(0xa3, der(0x30, der(0x30, oid('2.5.29.17'), der(0x04, altNames)))));
  const signature = sign('sha256', tbs, privateKey);
  const cert = der(0x30, tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature));
  const pem = (label: string, body: Buffer) => `-----BEGIN ${label}-----\n${body.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
  return { cert: pem('CERTIFICATE', cert), key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** A loopback HTTPS endpoint for ping mode (CIBA requires https), its certificate trusted by this process only. */
async function startPingReceiver() {
  const { cert: pem, key } = selfSignedCertificate();
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), pem]);
  const pings: { authorization: string; contentType: string; body: Record<string, unknown> }[] = [];
  const server = https.createServer({ key, cert: pem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pings.push({
        authorization: req.headers.authorization ?? '', contentType: req.headers['content-type'] ?? '',
        body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}/ciba-ping`,
    pings,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('CIBA on the phone app approval', () => {
  let server: TestServer;
  let poller: CibaClient;
  let ping: Awaited<ReturnType<typeof startPingReceiver>>;

  const cli = (args: string[]) => runCommand(args, server.server.services, { stdin: async () => '' });

  /** A CIBA client registered by `latchkey clients add` (the real command and operations layer). */
  async function addCibaClient(name: string, flags: string[] = ['--ciba-mode', 'poll']): Promise<CibaClient> {
    const r = await cli(['clients', 'add', '--name', name, '--grant-type', CIBA, ...flags, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const metadata = JSON.parse(r.stdout) as Record<string, unknown>;
    const clientId = metadata.client_id as string;
    const clientSecret = metadata.client_secret as string;
    const config = await oidc.discovery(new URL(server.url), clientId, { client_secret: clientSecret }, oidc.ClientSecretBasic(clientSecret), {
      execute: [oidc.allowInsecureRequests],
    });
    return { clientId, clientSecret, metadata, config };
  }

  const basic = (c: { clientId: string; clientSecret: string }) => `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret}`).toString('base64')}`;

  async function post(path: string, client: { clientId: string; clientSecret: string } | undefined, form: Record<string, string>): Promise<Reply> {
    const res = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client ? { authorization: basic(client) } : {}) },
      body: new URLSearchParams(form),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  /** POST /backchannel as the client (raw: to see errors as they are sent). */
  const backchannel = (client: CibaClient, params: Record<string, string>) => post('/backchannel', client, { scope: 'openid', ...params });
  /** One poll of the token endpoint. */
  const poll = (client: CibaClient, authReqId: string) => post('/token', client, { grant_type: CIBA, auth_req_id: authReqId });

  /** The CIBA prompt waiting for this phone. */
  async function cibaPrompt(phone: PairedPhone): Promise<PromptJson> {
    const { prompts } = await promptsOf(phone.device);
    const prompt = prompts.find((p) => p.kind === 'ciba');
    assert.ok(prompt, `a CIBA prompt waits for the phone (it has ${prompts.map((p) => p.kind).join(', ') || 'none'})`);
    return prompt;
  }
  const approve = (phone: PairedPhone, prompt: { id: string }) => phone.device.request('POST', `/app/api/prompts/${prompt.id}/approve`, {});
  const deny = (phone: PairedPhone, prompt: { id: string }, reason: 'cancel' | 'not-me') =>
    phone.device.request('POST', `/app/api/prompts/${prompt.id}/deny`, { reason });

  /** A device's answer to a prompt it may no longer answer: unknown (taken out), already answered, or expired. */
  const refusedAnswer = (r: { status: number }) => [404, 409, 410].includes(r.status);
  /** The user's waiting CIBA prompts, as stored. */
  const cibaPromptsOf = async (userId: string) =>
    (await server.server.services.store.pending.waitingFor(userId, 'push')).filter((r) => r.data.purpose === 'ciba');

  /** A new user with a paired phone, and a CIBA request for them. */
  async function requestFor(prefix: string, client = poller, params: Record<string, string> = {}) {
    const user = await userWithPhone(server, prefix);
    const started = await oidc.initiateBackchannelAuthentication(client.config, { scope: 'openid email', login_hint: user.email, ...params });
    return { user, phone: user.phone, started };
  }

  before(async () => {
    ping = await startPingReceiver();
    server = await startTestServer({
      config: {
        // The local phone is an "open the app" device (no push service needed); pings go to a loopback receiver.
        twoStep: { push: { allowInsecureEndpoints: true, maxPerIpPer15Minutes: 1000 } },
        backchannelLogout: { allowPrivateNetwork: true },
      },
    });
    poller = await addCibaClient('Call centre');
  });

  after(async () => {
    await server?.stop();
    await ping?.stop();
  });

  it('discovery advertises exactly what Latchkey does: the endpoint, poll and ping, no user_code, the grant type', async () => {
    const doc = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.equal(doc.backchannel_authentication_endpoint, `${server.url}/backchannel`);
    assert.deepEqual(doc.backchannel_token_delivery_modes_supported, ['poll', 'ping']);
    assert.equal(doc.backchannel_user_code_parameter_supported, false);
    assert.ok((doc.grant_types_supported as string[]).includes(CIBA));
    assert.equal(doc.backchannel_authentication_request_signing_alg_values_supported, undefined, 'signed CIBA requests are not offered');
  });

  it('registers only confidential CIBA clients, with a mode, and an https endpoint for ping mode only', async () => {
    const refused = async (flags: string[], pattern: RegExp) => {
      const r = await cli(['clients', 'add', '--name', 'Refused', ...flags]);
      assert.notEqual(r.code, 0, `accepted ${flags.join(' ')}`);
      assert.match(r.stderr, pattern);
    };
    await refused(['--grant-type', CIBA, '--ciba-mode', 'poll', '--public'], /CIBA grant needs a confidential client/);
    await refused(['--grant-type', CIBA], /needs --ciba-mode poll or ping/);
    await refused(['--grant-type', CIBA, '--ciba-mode', 'push'], /CIBA mode must be one of poll, ping/);
    await refused(['--grant-type', CIBA, '--ciba-mode', 'ping'], /ping mode needs --ciba-notification-endpoint/);
    await refused(['--grant-type', CIBA, '--ciba-mode', 'ping', '--ciba-notification-endpoint', 'http://127.0.0.1:9/ping'], /must use https/);
    await refused(['--grant-type', CIBA, '--ciba-mode', 'poll', '--ciba-notification-endpoint', 'https://app.example.com/ping'], /poll mode takes no notification endpoint/);
    await refused(['--redirect-uri', 'https://app.example.com/cb', '--ciba-mode', 'poll'], /need --grant-type urn:openid:params:grant-type:ciba/);

    assert.equal(poller.metadata.backchannel_token_delivery_mode, 'poll');
    assert.equal(poller.metadata.backchannel_user_code_parameter, false);
    assert.equal(poller.metadata.backchannel_client_notification_endpoint, undefined);
    assert.deepEqual(poller.metadata.grant_types, [CIBA]);
    assert.equal(poller.metadata.token_endpoint_auth_method, 'client_secret_basic');
    const pinger = await addCibaClient('Ping app', ['--ciba-mode', 'ping', '--ciba-notification-endpoint', 'https://app.example.com/ping', '--grant-type', 'refresh_token']);
    assert.equal(pinger.metadata.backchannel_token_delivery_mode, 'ping');
    assert.equal(pinger.metadata.backchannel_client_notification_endpoint, 'https://app.example.com/ping');
    assert.deepEqual(pinger.metadata.grant_types, [CIBA, 'refresh_token']);
  });

  it('a public client cannot start a CIBA request, however it got its metadata', async () => {
    const clientId = 'public-ciba-client';
    await server.server.services.store.clients.insert({
      clientId, name: 'Public CIBA', metadata: {
        client_name: 'Public CIBA', application_type: 'web', grant_types: [CIBA], response_types: [], redirect_uris: [],
        token_endpoint_auth_method: 'none', backchannel_token_delivery_mode: 'poll',
      },
    });
    const user = await userWithPhone(server, 'ciba-public');
    const r = await post('/backchannel', undefined, { client_id: clientId, scope: 'openid', login_hint: user.email });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'unauthorized_client');
    assert.equal((await promptsOf(user.phone.device)).prompts.length, 0, 'no prompt reached the phone');
  });

  it('approving on the phone gives tokens whose ID token says what happened: amr ["mca"] at the one-factor level', async () => {
    const { user, phone, started } = await requestFor('ciba-approve', poller, { binding_message: 'Order 4711 — €12,50' });
    assert.equal(started.expires_in, 120, 'a request lives as long as a prompt');
    assert.equal(started.interval, 5);

    const prompt = await cibaPrompt(phone);
    assert.equal(prompt.client.name, 'Call centre');
    assert.equal(prompt.bindingMessage, 'Order 4711 — €12,50');
    assert.equal(prompt.numberDigits, null, 'no number: the binding message binds the two devices');
    assert.equal((await approve(phone, prompt)).status, 200);

    const tokens = await oidc.pollBackchannelAuthenticationGrant(poller.config, { ...started, interval: 0 });
    const claims = tokens.claims()!;
    assert.equal(claims.sub, user.id);
    assert.deepEqual(claims.amr, ['mca'], 'the phone, and no password: no pwd, no mfa');
    assert.equal(claims.acr, ONE_FACTOR);
    assert.ok(Math.abs(Number(claims.auth_time) - Date.now() / 1000) < 30);
    const info = await oidc.fetchUserInfo(poller.config, tokens.access_token, user.id);
    assert.equal(info.email, user.email, 'the approval allowed the scopes asked for');
    assert.equal((await promptsOf(phone.device)).prompts.length, 0, 'the prompt is gone');
  });

  it('answers authorization_pending until the phone answers, slow_down to a client that polls too fast, then the tokens', async () => {
    const { phone, started } = await requestFor('ciba-pending');
    const first = await poll(poller, started.auth_req_id);
    assert.deepEqual([first.status, first.json.error], [400, 'authorization_pending']);
    const tooSoon = await poll(poller, started.auth_req_id);
    assert.deepEqual([tooSoon.status, tooSoon.json.error], [400, 'slow_down']);

    // openid-client's own polling, 1 s apart here; the phone approves between its first and second poll.
    const second = await requestFor('ciba-pending');
    const tokens = oidc.pollBackchannelAuthenticationGrant(poller.config, { ...second.started, interval: 1 });
    await sleep(1400);
    assert.equal((await approve(second.phone, await cibaPrompt(second.phone))).status, 200);
    assert.deepEqual((await tokens).claims()!.amr, ['mca']);

    // The first request is still pending, and a poll after the interval is not told to slow down.
    await sleep(4100 - 1400);
    const later = await poll(poller, started.auth_req_id);
    assert.equal(later.json.error, 'authorization_pending');
    assert.ok(await cibaPrompt(phone));
  });

  it('the prompt goes out as an encrypted Web Push that names it and nothing else, with TTL the request\'s time', async () => {
    const pushService = await PushService.start();
    try {
      const user = await server.newUser('ciba-push');
      const phone = await pairPhone(server, user.id, { push: pushService });
      const started = await oidc.initiateBackchannelAuthentication(poller.config, {
        scope: 'openid', login_hint: user.email, binding_message: 'Pay 12 EUR', requested_expiry: '60',
      });
      const prompt = await cibaPrompt(phone);
      const sent = await pushService.waitFor((p) => p.id === phone.subscription!.id && !!p.plaintext?.includes(prompt.id));
      assert.equal(sent.status, 201);
      assert.deepEqual(JSON.parse(sent.plaintext!), { type: 'prompt', prompt: prompt.id });
      assert.equal(sent.urgency, 'high');
      assert.ok(sent.ttl! > 50 && sent.ttl! <= 60, `TTL ${sent.ttl}`);
      assert.equal(started.expires_in, 60);
    } finally {
      await pushService.stop();
    }
  });

  it('"Cancel" on the phone ends the request with access_denied, and an approval after it changes nothing', async () => {
    const { phone, started } = await requestFor('ciba-cancel');
    const prompt = await cibaPrompt(phone);
    assert.equal((await deny(phone, prompt, 'cancel')).status, 200);
    assert.ok(refusedAnswer(await approve(phone, prompt)), 'the prompt is answered');
    await assert.rejects(oidc.pollBackchannelAuthenticationGrant(poller.config, { ...started, interval: 0 }),
      (err: oidc.ResponseBodyError) => err.error === 'access_denied');
  });

  it('"This wasn\'t me" ends it with access_denied and pauses prompts: the next request for the user is refused (403)', async () => {
    const { user, phone, started } = await requestFor('ciba-not-me');
    assert.equal((await deny(phone, await cibaPrompt(phone), 'not-me')).status, 200);
    const r = await poll(poller, started.auth_req_id);
    assert.equal(r.json.error, 'access_denied');
    const again = await backchannel(poller, { login_hint: user.email });
    assert.equal(again.status, 403);
    assert.equal(again.json.error, 'access_denied');
    assert.match(String(again.json.error_description), /paused/);
    assert.equal((await promptsOf(phone.device)).prompts.length, 0, 'no prompt while paused');
  });

  it('the first answer stands: a second approval, or answers racing from two phones, change nothing', async () => {
    const { user, phone, started } = await requestFor('ciba-once');
    const prompt = await cibaPrompt(phone);
    assert.equal((await approve(phone, prompt)).status, 200);
    assert.ok(refusedAnswer(await approve(phone, prompt)));
    assert.ok(refusedAnswer(await deny(phone, prompt, 'cancel')));
    const tokens = await oidc.pollBackchannelAuthenticationGrant(poller.config, { ...started, interval: 0 });
    assert.deepEqual(tokens.claims()!.amr, ['mca']);

    // Two phones of one user answer one request at once, each both ways: exactly one answer is taken,
    // and the app gets what that answer said.
    const other = await pairPhone(server, user.id, { name: 'Second phone' });
    await server.server.services.store.counters.reset([`push:interval:${user.id}`, `push:ignored:${user.id}`]);
    const raced = await oidc.initiateBackchannelAuthentication(poller.config, { scope: 'openid', login_hint: user.email });
    const racing = await cibaPrompt(phone);
    const answers = await Promise.all([phone, other, phone, other].flatMap((p, i) => [
      i % 2 ? deny(p, racing, 'cancel') : approve(p, racing),
    ]));
    const taken = answers.map((a, i) => ({ status: a.status, approved: i % 2 === 0 })).filter((a) => a.status === 200);
    assert.equal(taken.length, 1, `one answer taken: ${answers.map((a) => a.status).join(', ')}`);
    const result = await poll(poller, raced.auth_req_id);
    if (taken[0]!.approved) assert.ok(result.json.id_token, JSON.stringify(result.json));
    else assert.equal(result.json.error, 'access_denied');
  });

  it('a request past its expiry is expired_token, and its prompt can no longer be answered', async () => {
    const { phone, started } = await requestFor('ciba-expiry', poller, { requested_expiry: '1' });
    assert.equal(started.expires_in, 1);
    const prompt = await cibaPrompt(phone);
    await sleep(1300);
    assert.equal((await approve(phone, prompt)).status, 410, 'expired');
    const r = await poll(poller, started.auth_req_id);
    assert.deepEqual([r.status, r.json.error], [400, 'expired_token']);
  });

  it('ping mode: the app\'s https endpoint is told with its client_notification_token, and the tokens are there', async () => {
    const pinged = await addCibaClient('Ping app', ['--ciba-mode', 'ping', '--ciba-notification-endpoint', ping.url]);
    const token = 'notify-me-0123456789abcdef';
    const { phone, started } = await requestFor('ciba-ping', pinged, { client_notification_token: token });
    assert.equal(ping.pings.length, 0, 'nothing before the answer');
    assert.equal((await approve(phone, await cibaPrompt(phone))).status, 200);
    const received = ping.pings.at(-1);
    assert.ok(received, 'the ping arrived before the approval returned');
    assert.equal(received.authorization, `Bearer ${token}`);
    assert.equal(received.contentType, 'application/json');
    assert.deepEqual(received.body, { auth_req_id: started.auth_req_id });
    const r = await poll(pinged, started.auth_req_id);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(decodeJwt(String(r.json.id_token)).payload.amr, ['mca']);

    // Without its token a ping client's request is refused.
    const user = await userWithPhone(server, 'ciba-ping-no-token');
    const bare = await backchannel(pinged, { login_hint: user.email });
    assert.deepEqual([bare.status, bare.json.error], [400, 'invalid_request']);
  });

  it('answers unknown_user_id alike for an unknown address, a user without a phone, a signed-out phone and a disabled user', async () => {
    const { store } = server.server.services;
    const noPhone = await server.newUser('ciba-nophone');
    const signedOut = await userWithPhone(server, 'ciba-signedout');
    assert.equal((await signedOut.phone.device.request('POST', '/app/api/sign-out')).status, 200);
    const disabled = await userWithPhone(server, 'ciba-disabled');
    await store.users.setStatus(disabled.id, 'disabled');

    const answers = [];
    for (const email of ['nobody-here@example.com', noPhone.email, signedOut.email, disabled.email]) {
      answers.push(await backchannel(poller, { login_hint: email }));
    }
    for (const a of answers) assert.deepEqual(a, answers[0]);
    assert.equal(answers[0]!.status, 400);
    assert.equal(answers[0]!.json.error, 'unknown_user_id');
    assert.equal((await cibaPromptsOf(disabled.id)).length, 0, 'no prompt for the disabled user');
  });

  it('the sign-in prompt limits apply: a request within 30 s of the last, and the 6th in 15 minutes, are refused (403)', async () => {
    const { store } = server.server.services;
    const user = await userWithPhone(server, 'ciba-limits');
    const ask = () => backchannel(poller, { login_hint: user.email });
    assert.equal((await ask()).status, 200);
    const soon = await ask();
    assert.deepEqual([soon.status, soon.json.error], [403, 'access_denied']);
    assert.match(String(soon.json.error_description), /too many prompts/);
    for (let n = 2; n <= 5; n++) {
      // As if the resend interval had passed (its doubling included); the 15-minute count stays.
      await store.counters.reset([`push:interval:${user.id}`, `push:ignored:${user.id}`]);
      assert.equal((await ask()).status, 200, `request ${n}`);
    }
    await store.counters.reset([`push:interval:${user.id}`, `push:ignored:${user.id}`]);
    const sixth = await ask();
    assert.deepEqual([sixth.status, sixth.json.error], [403, 'access_denied']);
    assert.equal((await cibaPromptsOf(user.id)).length, 1, 'one waiting prompt: each new one replaced the last');
  });

  it('refuses what it does not take: other hints, user_code, a bad binding_message, a level an approval cannot reach', async () => {
    const user = await userWithPhone(server, 'ciba-refused');
    const refused = async (params: Record<string, string>, error: string, client = poller) => {
      const r = await backchannel(client, { login_hint: user.email, ...params });
      assert.deepEqual([r.status, r.json.error], [400, error], `${JSON.stringify(params)}: ${JSON.stringify(r.json)}`);
    };
    const idTokenHint = (await post('/backchannel', poller, { scope: 'openid', id_token_hint: 'eyJhbGciOiJub25lIn0.e30.' })).json;
    assert.equal(idTokenHint.error, 'invalid_request');
    assert.match(String(idTokenHint.error_description), /login_hint/);
    const hintToken = (await post('/backchannel', poller, { scope: 'openid', login_hint_token: 'x' })).json;
    assert.equal(hintToken.error, 'invalid_request');
    await refused({ user_code: '1234' }, 'invalid_request');
    await refused({ binding_message: 'x'.repeat(65) }, 'invalid_binding_message');
    await refused({ binding_message: 'pay\u202Egnp.exe' }, 'invalid_binding_message');
    await refused({ binding_message: 'two\nlines' }, 'invalid_binding_message');
    await refused({ acr_values: 'urn:latchkey:acr:mfa' }, 'invalid_request');
    const strict = await addCibaClient('Needs mfa', ['--ciba-mode', 'poll', '--minimum-acr', 'urn:latchkey:acr:mfa']);
    await refused({}, 'invalid_request', strict);
    assert.equal((await promptsOf(user.phone.device)).prompts.length, 0, 'none of them reached the phone');
    // 64 printable characters are fine.
    const ok = await backchannel(poller, { login_hint: user.email, binding_message: 'ß'.repeat(64) });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal((await cibaPrompt(user.phone)).bindingMessage, 'ß'.repeat(64));
  });

  it('keeps the request handle, the notification token and the client secret out of the log', async () => {
    const { started } = await requestFor('ciba-log', poller, { binding_message: 'log check' });
    await poll(poller, started.auth_req_id);
    const log = server.logText();
    assert.ok(log.includes('CIBA request sent to the phone'), 'the request was logged');
    for (const secret of [started.auth_req_id, poller.clientSecret, 'notify-me-0123456789abcdef']) assert.ok(!log.includes(secret));
  });
});
