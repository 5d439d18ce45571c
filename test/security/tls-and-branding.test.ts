import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

// A deployment behind a TLS proxy: the issuer is https, the proxy (here: loopback) is trusted.
describe('behind a TLS-terminating proxy, with branding', () => {
  let server: TestServer;
  let clientId: string;
  before(async () => {
    server = await startTestServer({
      config: {
        proxy: { trusted: ['127.0.0.1/32', '::1'], tlsTerminated: true },
        branding: { primaryColor: '#aa3300', logoUrl: 'https://cdn.example.test/logo.svg' },
        productName: 'Acme Login',
      },
    });
    clientId = (await server.addClient({ name: 'TLS App', redirectUris: ['https://app.example.test/cb'] })).clientId;
  });
  after(() => server.stop());

  const base = () => `http://127.0.0.1:${new URL(server.url).port}`;

  it('marks the session and interaction cookies Secure when the proxy says the request came over https', async () => {
    const params = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://app.example.test/cb', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const res = await fetch(`${base()}/auth?${params}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.5' } });
    assert.equal(res.status, 303);
    const cookies = res.headers.getSetCookie();
    assert.ok(cookies.length > 0);
    for (const c of cookies) assert.match(c, /;\s*secure/i, c);
  });

  it('does not mark cookies Secure for a plain-http request that a trusted proxy did not vouch for', async () => {
    const params = new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: 'https://app.example.test/cb', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' });
    const res = await fetch(`${base()}/auth?${params}`, { redirect: 'manual' });
    const cookies = res.headers.getSetCookie();
    assert.ok(cookies.some((c) => !/;\s*secure/i.test(c)));
  });

  it('serves the brand colour as a stylesheet and the logo under a CSP that allows only its origin', async () => {
    const css = await fetch(`${base()}/assets/theme.css`);
    assert.equal(css.status, 200);
    assert.match(css.headers.get('content-type') ?? '', /text\/css/);
    assert.match(await css.text(), /--primary: #aa3300;/);
    const page = await fetch(`${base()}/setup?token=nope`, { headers: { accept: 'text/html' } });
    const html = await page.text();
    assert.match(html, /<img src="https:\/\/cdn\.example\.test\/logo\.svg" alt="Acme Login"/);
    assert.match(page.headers.get('content-security-policy') ?? '', /img-src 'self' data: https:\/\/cdn\.example\.test(;|$)/);
  });
});

describe('an https issuer', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ config: { issuer: 'https://login.example.test', proxy: { trusted: [], tlsTerminated: true } } });
  });
  after(() => server.stop());

  it('sends HSTS on every response', async () => {
    const res = await fetch(`http://127.0.0.1:${server.config.port}/healthz`);
    assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000; includeSubDomains');
  });
});
