/**
 * The first-party module serves any of Latchkey's own apps, each at its own path with its own cookies and
 * secret: the account page today, and a second app (the console) defined the same way.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ACCOUNT_APP, callbackUri, clientMetadata, clientSecret, isFirstParty, type FirstPartyApp } from '../../src/first-party/app.ts';
import { flowCookie, sessionCookie } from '../../src/first-party/cookies.ts';
import { safeReturnPath } from '../../src/first-party/flow.ts';

const config = loadConfig({ env: {} });
const console: FirstPartyApp = { id: 'console', clientId: 'latchkey-console', path: '/console', scope: 'openid', nameKey: 'account.clientName' };

describe('first-party apps', () => {
  it('keeps the account page\'s client as it was: id, secret derivation, callback, cookies', () => {
    assert.equal(ACCOUNT_APP.clientId, 'latchkey-account');
    assert.equal(clientSecret(config, ACCOUNT_APP), createHmac('sha256', config.secrets.cookieKeys[0]!).update('latchkey:account-client-secret').digest('base64url'));
    assert.equal(callbackUri(config, ACCOUNT_APP), `${config.issuer}/account/callback`);
    assert.deepEqual([sessionCookie(ACCOUNT_APP), flowCookie(ACCOUNT_APP)], ['lk.account', 'lk.account.flow']);
    assert.equal(isFirstParty('latchkey-account'), true);
    assert.equal(isFirstParty('someone-else'), false);
  });

  it('gives a second app its own path, callback, cookies and secret', () => {
    const meta = clientMetadata(config, console, 'Console');
    assert.deepEqual(meta.redirect_uris, [`${config.issuer}/console/callback`]);
    assert.deepEqual(meta.post_logout_redirect_uris, [`${config.issuer}/console`]);
    assert.notEqual(meta.client_secret, clientSecret(config, ACCOUNT_APP));
    assert.deepEqual([sessionCookie(console), flowCookie(console)], ['lk.console', 'lk.console.flow']);
  });

  it('returns only to the app\'s own pages after a sign-in', () => {
    assert.equal(safeReturnPath(console, '/console/users/abc'), '/console/users/abc');
    assert.equal(safeReturnPath(ACCOUNT_APP, '/account/two-step/totp'), '/account/two-step/totp');
    for (const bad of ['/account', '//evil.example', '/console?next=x', 'https://evil.example/console', '/console/../account', '/consoleevil', '/console/a/b/c/d', 42]) {
      assert.equal(safeReturnPath(console, bad), '/console', String(bad));
    }
    assert.equal(safeReturnPath(ACCOUNT_APP, '/console/users'), '/account');
  });
});
