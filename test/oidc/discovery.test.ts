import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fetchJwks } from '../helpers/jwt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('discovery and published keys', () => {
  let server: TestServer;
  let meta: Record<string, unknown>;

  before(async () => {
    server = await startTestServer();
    const res = await fetch(`${server.url}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    meta = (await res.json()) as Record<string, unknown>;
  });
  after(() => server.stop());

  it('names the issuer and endpoints on the issuer origin', () => {
    assert.equal(meta.issuer, server.url);
    for (const [key, path] of [
      ['authorization_endpoint', '/auth'],
      ['token_endpoint', '/token'],
      ['userinfo_endpoint', '/me'],
      ['jwks_uri', '/jwks'],
      ['introspection_endpoint', '/token/introspection'],
      ['revocation_endpoint', '/token/revocation'],
      ['end_session_endpoint', '/session/end'],
      ['pushed_authorization_request_endpoint', '/request'],
      ['device_authorization_endpoint', '/device/auth'],
    ] as const) {
      assert.equal(meta[key], `${server.url}${path}`, key);
    }
  });

  it('advertises exactly the three Latchkey levels as acr values', () => {
    assert.deepEqual(meta.acr_values_supported, ['urn:latchkey:acr:1fa', 'urn:latchkey:acr:mfa', 'phr']);
  });

  it('offers only the code response type: no implicit or hybrid flow, no password grant', () => {
    assert.deepEqual(meta.response_types_supported, ['code']);
    const grants = meta.grant_types_supported as string[];
    assert.ok(!grants.includes('implicit'));
    assert.ok(!grants.includes('password'));
    assert.ok(grants.includes('authorization_code'));
    assert.ok(grants.includes('refresh_token'));
    assert.ok(grants.includes('client_credentials'));
    assert.ok(grants.includes('urn:ietf:params:oauth:grant-type:device_code'));
  });

  it('allows only S256 for PKCE', () => {
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
  });

  it('never offers alg none for ID tokens, userinfo or request objects', () => {
    const idAlgs = meta.id_token_signing_alg_values_supported as string[];
    assert.deepEqual([...idAlgs].sort(), ['ES256', 'EdDSA', 'RS256']);
    for (const key of ['id_token_signing_alg_values_supported', 'userinfo_signing_alg_values_supported', 'request_object_signing_alg_values_supported']) {
      const algs = (meta[key] as string[] | undefined) ?? [];
      assert.ok(!algs.includes('none'), `${key} has no "none"`);
    }
  });

  it('advertises the claims parameter, DPoP and the standard scopes', () => {
    assert.equal(meta.claims_parameter_supported, true);
    const dpopAlgs = meta.dpop_signing_alg_values_supported as string[];
    // ES256 is openid-client's default; Ed25519 is the name it signs Ed25519 proofs with (RFC 9864).
    for (const alg of ['ES256', 'Ed25519', 'EdDSA']) assert.ok(dpopAlgs.includes(alg), alg);
    assert.ok(!dpopAlgs.includes('none') && !dpopAlgs.some((a) => a.startsWith('HS')), 'no symmetric or none DPoP algs');
    const scopes = meta.scopes_supported as string[];
    for (const s of ['openid', 'offline_access', 'profile', 'email']) assert.ok(scopes.includes(s), s);
  });

  it('publishes one RS256, one ES256 and one EdDSA public key with distinct kids and no private members', async () => {
    const keys = await fetchJwks(server.url);
    assert.deepEqual(keys.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
    assert.equal(new Set(keys.map((k) => k.kid)).size, keys.length, 'distinct kids');
    for (const k of keys) {
      assert.equal(typeof k.kid, 'string');
      assert.equal(k.use, 'sig');
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
        assert.equal(k[member], undefined, `${k.alg} key must not publish "${member}"`);
      }
    }
    assert.deepEqual(keys.find((k) => k.alg === 'ES256')?.crv, 'P-256');
    assert.deepEqual(keys.find((k) => k.alg === 'EdDSA')?.crv, 'Ed25519');
    assert.equal(keys.find((k) => k.alg === 'RS256')?.kty, 'RSA');
  });
});
