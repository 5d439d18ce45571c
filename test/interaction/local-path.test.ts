import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localPath } from '../../src/http/language.ts';

describe('localPath (where the language picker may send the browser back to)', () => {
  const issuer = 'https://id.example.com';

  it('keeps a path on this site with its query', () => {
    assert.equal(localPath('/account/security', issuer), '/account/security');
    assert.equal(localPath('/reset/confirm?token=abc', issuer), '/reset/confirm?token=abc');
  });

  it('refuses every path a browser would read as another host, also after normalising dots', () => {
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example/', '/.//evil.example', '/a/..//evil.example', '/%2e//evil.example', '/./\\evil.example', 'account', '', '/\r\nx']) {
      const back = localPath(bad, issuer);
      assert.ok(back === undefined || (back.startsWith('/') && !back.startsWith('//')), `${JSON.stringify(bad)} gave ${back}`);
      if (back !== undefined) assert.equal(new URL(back, issuer).origin, new URL(issuer).origin);
    }
    assert.equal(localPath('/.//evil.example', issuer), undefined);
    assert.equal(localPath('/a/..//evil.example', issuer), undefined);
  });
});
