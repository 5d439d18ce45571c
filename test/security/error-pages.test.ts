import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const REDIRECT = 'http://localhost:9999/cb';
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

/** The sentence in the page's alert, entities decoded. */
const alertOf = (html: string) =>
  (/<p class="error" role="alert">([^<]*)<\/p>/.exec(html)?.[1] ?? '').replaceAll('&#39;', "'").replaceAll('&quot;', '"').replaceAll('&amp;', '&');

/** A page in Latchkey's own layout (its stylesheet and the product name), with no stack trace anywhere. */
function assertBranded(html: string) {
  assert.match(html, /<link rel="stylesheet" href="\/assets\/style\.css">/, 'the branded layout');
  assert.match(html, /<header class="brand">Acme Login<\/header>/, 'the product name');
  assert.doesNotMatch(html, /\n\s+at [\w.<>$]+ \(|node_modules|\.ts:\d+|Error: /, 'no stack trace');
}

describe('error pages in words', () => {
  let server: TestServer;
  let rp: RelyingParty;
  before(async () => {
    server = await startTestServer({ config: { productName: 'Acme Login' } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
  });
  after(() => server.stop());

  /** The app's own authorization URL with some parameters replaced ('' removes one). */
  async function authUrl(params: Record<string, string>) {
    const u = new URL((await rp.authorization()).url);
    for (const [k, v] of Object.entries(params)) {
      if (v === '') u.searchParams.delete(k);
      else u.searchParams.set(k, v);
    }
    return u.toString();
  }

  describe('protocol errors at /auth show a sentence, the code small below and the description folded away', () => {
    const cases: [string, Record<string, string>, string, RegExp, RegExp][] = [
      ['an unknown client_id', { client_id: 'no-such-app' }, 'invalid_client', /isn't registered with Acme Login/, /client is invalid/],
      ['an unregistered redirect_uri', { redirect_uri: 'https://attacker.example/cb' }, 'invalid_redirect_uri', /address it hasn't registered/, /redirect_uri did not match/],
      ['no redirect_uri', { redirect_uri: '' }, 'invalid_request', /made a request that Acme Login can't accept/, /redirect_uri/],
    ];
    for (const [label, params, code, sentence, description] of cases) {
      it(`${label}: ${code}`, async () => {
        const res = await fetch(await authUrl(params), { redirect: 'manual', headers: HTML });
        const html = await res.text();
        assert.equal(res.status, 400);
        assert.equal(res.headers.get('location'), null, 'no redirect');
        assert.match(res.headers.get('content-type') ?? '', /text\/html/);
        assertBranded(html);
        const said = alertOf(html);
        assert.match(said, sentence, `the sentence, got "${said}"`);
        assert.doesNotMatch(said, description, 'the protocol description is not the message');
        assert.doesNotMatch(said, new RegExp(code), 'nor is the code');
        assert.match(html, new RegExp(`<p class="muted error-code">Error code: <code>${code}</code>`), 'the code, small, below');
        assert.match(html, /<details class="muted error-details"><summary>Details for the app(&#39;|')s developer<\/summary><p><code>[^<]+<\/code><\/p><\/details>/);
        assert.match(/<details[\s\S]*<\/details>/.exec(html)![0], description, "the description is kept for the app's developer");
        assert.match(html, /request <code>[0-9a-f-]{36}<\/code>/, 'the request id, for support');
      });
    }
  });

  it('answers a browser at /me without a token with a sentence, and a program with JSON', async () => {
    const page = await fetch(`${server.url}/me`, { headers: HTML });
    assert.equal(page.status, 401);
    const html = await page.text();
    assertBranded(html);
    assert.match(alertOf(html), /Your sign-in for this page has expired or isn't valid\./);
    const api = await fetch(`${server.url}/me`, { headers: { accept: 'application/json' } });
    assert.equal(api.status, 401);
    assert.equal(((await api.json()) as { error: string }).error, 'invalid_token');
  });

  describe('unknown paths', () => {
    it('shows a browser the branded 404 page, with status 404', async () => {
      for (const path of ['/no-such-page', '/account/no-such-page/deeper', '/assets/no-such-file.css']) {
        const res = await fetch(`${server.url}${path}`, { headers: HTML });
        assert.equal(res.status, 404, path);
        assert.match(res.headers.get('content-type') ?? '', /text\/html/, path);
        assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, 'under the same CSP as every page');
        const html = await res.text();
        assertBranded(html);
        assert.match(html, /<h1>Page not found<\/h1>/, path);
        assert.equal(alertOf(html), 'There is nothing at this address.');
        assert.match(html, /<a href="\/account">Go to your account<\/a>/);
        assert.match(html, /Error code: <code>not_found<\/code>/);
      }
    });

    it('answers JSON to a program, and at API paths whatever the client accepts', async () => {
      const json = await fetch(`${server.url}/no-such-page`, { headers: { accept: 'application/json' } });
      assert.equal(json.status, 404);
      assert.deepEqual(await json.json(), { error: 'not_found', message: 'There is nothing at this address.' });
      for (const [method, path] of [['GET', '/token'], ['GET', '/token/introspection'], ['POST', '/reg'], ['GET', '/reg/some-client'], ['PUT', '/me'], ['GET', '/.well-known/no-such-document']]) {
        const res = await fetch(`${server.url}${path}`, { method: method!, headers: HTML });
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${method} ${path}`);
        assert.equal(((await res.json()) as { error: string }).error, 'not_found');
      }
    });

    it('leaves the endpoints that exist alone', async () => {
      const discovery = await fetch(`${server.url}/.well-known/openid-configuration`, { headers: HTML });
      assert.equal(discovery.status, 200);
      assert.equal(((await discovery.json()) as { issuer: string }).issuer, server.url);
      const jwks = await fetch(`${server.url}/jwks`);
      assert.equal(jwks.status, 200);
      const token = await fetch(`${server.url}/token`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=authorization_code&code=nope' });
      assert.equal(token.status, 400);
      assert.equal(((await token.json()) as { error: string }).error, 'invalid_request');
    });
  });
});
