import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { CookieClient } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('secrets never reach the log', () => {
  let server: TestServer;
  const secrets: string[] = [];
  const carol = { email: 'carol@example.com', password: 'carol-very-secret-passphrase' };

  before(async () => {
    server = await startTestServer({ logLevel: 'trace' });
    await server.addUser(carol);
  });
  after(() => server.stop());

  it('keeps passwords, client secrets, codes and tokens out of a trace-level log', async () => {
    const client = await server.addClient({ name: 'Logged', redirectUris: ['http://localhost:9999/cb'] });
    const service = await server.addClient({ name: 'Svc', grantTypes: ['client_credentials'] });
    secrets.push(client.clientSecret!, service.clientSecret!, carol.password);
    const rp = await RelyingParty.create(server.url, client);

    const browser = new CookieClient(server.url);
    const { url, checks } = await rp.authorization({ scope: 'openid email offline_access' });
    // Wrong password first: the failed attempt is logged as an event, without the password.
    const page = await browser.follow(url);
    await browser.submit(page, '/login', { email: carol.email, password: 'wrong-but-secret-guess' });
    secrets.push('wrong-but-secret-guess');
    const { drive } = await import('../helpers/rp.ts');
    const back = await drive(browser, url, carol);
    secrets.push(new URL(back).searchParams.get('code')!);
    const tokens = await rp.callback(back, checks);
    secrets.push(tokens.access_token, tokens.refresh_token!, tokens.id_token!);
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!);
    secrets.push(refreshed.access_token);
    const svc = await RelyingParty.create(server.url, service);
    const cc = await oidc.clientCredentialsGrant(svc.config);
    secrets.push(cc.access_token);
    await oidc.tokenIntrospection(svc.config, cc.access_token);
    // Session cookies and every signature are secrets; the interaction cookies carry the interaction id,
    // which is also in the page URL (and the access log), so only their signatures count.
    for (const [name, value] of browser.jar) if (!/^_interaction(_resume)?$/.test(name) && value.length > 10) secrets.push(value);
    assert.ok([...browser.jar.keys()].includes('_session'), 'the session cookie was captured for the check');

    const log = server.logText();
    assert.ok(log.length > 1000, 'the log was captured at trace level');
    assert.match(log, /security event/);
    for (const s of secrets) {
      const at = log.indexOf(s);
      assert.ok(at === -1, `a secret (${s.slice(0, 6)}…) appeared in the log: ${log.slice(Math.max(0, at - 300), at + 50)}`);
    }
  });
});
