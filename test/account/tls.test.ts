import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('the account page behind TLS', () => {
  let https: TestServer;
  let proxied: TestServer;

  before(async () => {
    https = await startTestServer({ config: { issuer: 'https://login.example.test', proxy: { trusted: [], tlsTerminated: true } } });
    proxied = await startTestServer({ config: { proxy: { trusted: ['127.0.0.1/32', '::1'], tlsTerminated: true } } });
  });
  after(async () => {
    await https.stop();
    await proxied.stop();
  });

  const flowCookie = (res: Response) => res.headers.getSetCookie().find((c) => c.startsWith('lk.account.flow='));

  it('marks its cookies Secure for an https issuer, and sends the browser to the https authorization endpoint', async () => {
    const res = await fetch(`http://127.0.0.1:${https.config.port}/account`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, 'https://login.example.test/auth');
    assert.equal(location.searchParams.get('redirect_uri'), 'https://login.example.test/account/callback');
    const cookie = flowCookie(res);
    assert.ok(cookie);
    assert.match(cookie!, /;\s*secure/i);
    assert.match(cookie!, /;\s*httponly/i);
    assert.match(cookie!, /;\s*samesite=lax/i);
  });

  it('marks its cookies Secure when a trusted proxy says the request came over https, and not otherwise', async () => {
    const base = `http://127.0.0.1:${proxied.config.port}`;
    const viaTls = await fetch(`${base}/account`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    assert.match(flowCookie(viaTls)!, /;\s*secure/i);
    const plain = await fetch(`${base}/account`, { redirect: 'manual' });
    assert.doesNotMatch(flowCookie(plain)!, /;\s*secure/i);
  });
});
