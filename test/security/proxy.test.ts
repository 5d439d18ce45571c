import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clientIp, parseCidr } from '../../src/http/ip.ts';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('client address behind proxies (unit)', () => {
  const trusted = (ip: string) => ['10.0.0.0/8', '::1'].some((c) => parseCidr(c)!(ip));

  it('uses the socket address when the peer is not a trusted proxy, whatever X-Forwarded-For says', () => {
    assert.equal(clientIp('198.51.100.7', '203.0.113.1', trusted), '198.51.100.7');
  });
  it('walks X-Forwarded-For from the right past trusted proxies only', () => {
    assert.equal(clientIp('10.0.0.1', '203.0.113.1, 198.51.100.9, 10.0.0.2', trusted), '198.51.100.9');
  });
  it('stops at garbage and never returns it', () => {
    assert.equal(clientIp('10.0.0.1', 'not-an-ip, <script>', trusted), '10.0.0.1');
    assert.equal(clientIp('10.0.0.1', '203.0.113.1, , 10.0.0.3', trusted), '10.0.0.3');
  });
  it('treats IPv4-mapped IPv6 as IPv4', () => {
    assert.equal(clientIp('::ffff:198.51.100.7', undefined, trusted), '198.51.100.7');
    assert.ok(parseCidr('10.0.0.0/8')!('::ffff:10.1.2.3'));
  });
  it('rejects malformed ranges', () => {
    for (const bad of ['10.0.0.0/33', 'abc', '10.0.0.0/8/1', '1.2.3.4/', '::1/129', '999.1.1.1']) assert.equal(parseCidr(bad), undefined, bad);
  });
});

async function failedSignInIp(server: TestServer, rp: RelyingParty, headers: Record<string, string>): Promise<string> {
  const browser = new CookieClient(server.url);
  const { url } = await rp.authorization();
  const page = await browser.follow(url);
  const email = `nobody-${Math.random().toString(36).slice(2)}@example.com`;
  const res = await browser.submit(page, '/login', { email, password: 'wrong password here' }, headers);
  assert.equal(res.status, 401);
  const row = await server.server.services.database.knex('security_events')
    .where({ type: 'sign_in.failed' }).orderBy('id', 'desc').first('ip');
  return row.ip as string;
}

describe('X-Forwarded-For from an untrusted peer', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'P', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  it('is ignored: the recorded address is the socket peer', async () => {
    assert.equal(await failedSignInIp(server, rp, { 'x-forwarded-for': '203.0.113.66' }), '127.0.0.1');
  });
  it('cannot make the provider believe the request came over https', async () => {
    const res = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' } });
    const body = (await res.json()) as { authorization_endpoint: string };
    assert.equal(new URL(body.authorization_endpoint).origin, server.url);
  });
});

describe('X-Forwarded-For from a trusted proxy', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startTestServer({ config: { proxy: { trusted: ['127.0.0.1/32', '::1'], tlsTerminated: false } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'P', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  it('gives the client address from the header', async () => {
    assert.equal(await failedSignInIp(server, rp, { 'x-forwarded-for': '203.0.113.66' }), '203.0.113.66');
  });
  it('survives garbage in the header, falling back to the proxy address', async () => {
    assert.equal(await failedSignInIp(server, rp, { 'x-forwarded-for': 'garbage, <script>, 999.1.1.1' }), '127.0.0.1');
  });
});
