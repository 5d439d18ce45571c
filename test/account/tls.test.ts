import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { csrfOf } from '../helpers/browser.ts';

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

  const flowCookie = (res: Response, prefix = '') => res.headers.getSetCookie().find((c) => c.startsWith(`${prefix}lk.account.flow=`));

  it('marks its cookies Secure for an https issuer, and sends the browser to the https authorization endpoint', async () => {
    const res = await fetch(`http://127.0.0.1:${https.config.port}/account`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, 'https://login.example.test/auth');
    assert.equal(location.searchParams.get('redirect_uri'), 'https://login.example.test/account/callback');
    // A cookie scoped to /account gets the __Secure- prefix (__Host- needs Path=/).
    assert.equal(flowCookie(res), undefined, 'no unprefixed cookie under an https issuer');
    const cookie = flowCookie(res, '__Secure-');
    assert.ok(cookie, res.headers.getSetCookie().join(' | '));
    assert.match(cookie!, /;\s*path=\/account/i);
    assert.match(cookie!, /;\s*secure/i);
    assert.match(cookie!, /;\s*httponly/i);
    assert.match(cookie!, /;\s*samesite=lax/i);
  });

  it('names its site-wide cookies __Host- under an https issuer (Secure, Path=/, no Domain), and reads them back', async () => {
    const base = `http://127.0.0.1:${https.config.port}`;
    const client = await https.addClient({ name: 'Host prefix', redirectUris: ['https://app.example.test/cb'] });
    const params = new URLSearchParams({ client_id: client.clientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://app.example.test/cb', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const auth = await fetch(`${base}/auth?${params}`, { redirect: 'manual' });
    const jar = auth.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
    const login = await fetch(new URL(auth.headers.get('location')!, base).toString().replace('https://login.example.test', base), { headers: { cookie: jar } });
    assert.equal(login.status, 200);
    const csrf = login.headers.getSetCookie().find((c) => c.includes('lk.csrf='));
    assert.ok(csrf?.startsWith('__Host-lk.csrf='), csrf);
    assert.match(csrf!, /;\s*secure/i);
    assert.match(csrf!, /;\s*path=\/(;|$)/i);
    assert.doesNotMatch(csrf!, /domain=/i);
    // The form's token matches the prefixed cookie: a sign-in with a wrong password is checked, not refused as forged.
    const token = csrfOf(await login.text());
    const action = new URL(login.url).pathname.replace(/\/?$/, '/login');
    const sent = await fetch(`${base}${action}`, {
      method: 'POST', redirect: 'manual',
      headers: { cookie: `${jar}; ${csrf!.split(';')[0]}`, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://login.example.test' },
      body: new URLSearchParams({ csrf: token, email: 'nobody@example.com', password: 'not a password at all' }),
    });
    assert.equal(sent.status, 401, 'the CSRF check passed with the __Host- cookie');
    const plain = await fetch(`http://127.0.0.1:${proxied.config.port}/account`, { redirect: 'manual' });
    assert.ok(flowCookie(plain), 'an http issuer (development) keeps the plain names');
  });

  it('marks its cookies Secure when a trusted proxy says the request came over https, and not otherwise', async () => {
    const base = `http://127.0.0.1:${proxied.config.port}`;
    const viaTls = await fetch(`${base}/account`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    assert.match(flowCookie(viaTls)!, /;\s*secure/i);
    const plain = await fetch(`${base}/account`, { redirect: 'manual' });
    assert.doesNotMatch(flowCookie(plain)!, /;\s*secure/i);
  });
});
