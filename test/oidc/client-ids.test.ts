/**
 * A client_id and a key's kid are passed to CLI commands as operands, so they must never look like an
 * option: a base64url id starting with `-` was refused by `latchkey clients remove` ("unknown option -Y…"),
 * about one run in 32.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newClientId } from '../../src/oidc/clients.ts';
import { generateKey } from '../../src/oidc/keys.ts';

describe('client ids', () => {
  it('are 128 random bits of base64url that never start with - or _ (2000 of them: about 60 would have, before)', () => {
    const ids = Array.from({ length: 2000 }, newClientId);
    assert.deepEqual(ids.filter((id) => !/^[A-Za-z0-9][A-Za-z0-9_-]{21}$/.test(id)), []);
    assert.equal(new Set(ids).size, ids.length, 'no repeats');
  });

  it('and neither does a signing key\'s kid', () => {
    const kids = Array.from({ length: 300 }, () => generateKey('ES256').publicJwk.kid);
    assert.deepEqual(kids.filter((kid) => !/^[A-Za-z0-9][A-Za-z0-9_-]{15}$/.test(kid)), []);
  });
});
