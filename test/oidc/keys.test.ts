import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient } from '../helpers/browser.ts';
import { decodeJwt, fetchJwks, verifyJwt, type Jwk } from '../helpers/jwt.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { activationDelay, ensureSigningKeys, publicationWindow, rotateSigningKeys } from '../../src/oidc/keys.ts';
import type { KeyAlg } from '../../src/store/signing-keys.ts';

const ALGS: KeyAlg[] = ['RS256', 'ES256', 'EdDSA'];
/** JWK members that hold private key material (RSA, EC, OKP). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

interface KeyRow {
  kid: string; alg: string; state: string; public_jwk: Record<string, unknown>; private_sealed: string;
  created_at: Date; activates_at: Date | null; retired_at: Date | null; expires_at: Date | null;
}

describe('signing keys', () => {
  let server: TestServer;
  const rps = new Map<KeyAlg, RelyingParty>();
  const carol = { email: 'carol@example.com', password: 'carol rotates her keys' };
  /** ID tokens signed before the rotation, one per algorithm. */
  const signedBefore = new Map<KeyAlg, string>();
  let firstKids: Map<KeyAlg, string>;
  let newKids: string[];
  let carolId: string;

  const rows = () => server.server.services.database.knex<KeyRow>('signing_keys').select('*');
  const kidsByAlg = (keys: readonly Jwk[]) => new Map(ALGS.map((alg) => [alg, keys.filter((k) => k.alg === alg).map((k) => k.kid!)]));

  async function idToken(alg: KeyAlg): Promise<string> {
    const { tokens, claims } = await rps.get(alg)!.signIn(new CookieClient(server.url), carol);
    assert.equal(claims.sub, carolId, 'openid-client accepted the ID token');
    return tokens.id_token!;
  }

  before(async () => {
    server = await startTestServer();
    carolId = (await server.addUser(carol)).id;
    for (const alg of ALGS) {
      const client = await server.addClient({ name: `App ${alg}`, redirectUris: ['http://localhost:9999/cb'], idTokenAlg: alg });
      rps.set(alg, await RelyingParty.create(server.url, client));
    }
  });
  after(() => server.stop());

  it('generates one key per algorithm on first start, each with its own kid, and publishes only their public parts', async () => {
    const keys = await fetchJwks(server.url);
    assert.equal(keys.length, 3);
    assert.deepEqual(keys.map((k) => k.alg).sort(), [...ALGS].sort());
    assert.equal(new Set(keys.map((k) => k.kid)).size, 3, 'distinct kids');
    for (const k of keys) {
      assert.equal(k.use, 'sig');
      assert.ok(typeof k.kid === 'string' && k.kid.length >= 16);
      for (const m of PRIVATE_MEMBERS) assert.equal(k[m], undefined, `the JWKS must not publish ${m} of ${k.alg}`);
    }
    const byAlg = new Map(keys.map((k) => [k.alg as KeyAlg, k]));
    assert.equal(byAlg.get('RS256')!.kty, 'RSA');
    assert.ok(Buffer.from(byAlg.get('RS256')!.n as string, 'base64url').length >= 256, 'RSA modulus of at least 2048 bits');
    assert.equal(byAlg.get('ES256')!.crv, 'P-256');
    assert.equal(byAlg.get('EdDSA')!.crv, 'Ed25519');
    firstKids = new Map(keys.map((k) => [k.alg as KeyAlg, k.kid!]));

    const stored = await rows();
    assert.equal(stored.length, 3);
    assert.ok(stored.every((r) => r.state === 'active' && r.retired_at === null && r.expires_at === null));
    assert.deepEqual(await ensureSigningKeys(server.server.services.store, server.config), [], 'a second start generates nothing');
    assert.equal((await rows()).length, 3);
  });

  it('seals the private parts at rest: the stored row never holds the private key in the clear', async () => {
    const published = await server.server.services.store.signingKeys.published();
    const stored = new Map((await rows()).map((r) => [r.kid, r]));
    assert.equal(published.length, 3);
    for (const key of published) {
      const row = stored.get(key.kid)!;
      const d = key.privateJwk.d;
      assert.ok(typeof d === 'string' && d.length > 20, `the ${key.alg} private key has a d value`);
      assert.match(row.private_sealed, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      assert.ok(!row.private_sealed.includes(d), `private_sealed must not contain d of ${key.alg}`);
      assert.ok(!row.private_sealed.includes('"d"'));
      const sealedBytes = Buffer.from(row.private_sealed.split('.')[2]!, 'base64url').toString('latin1');
      assert.ok(!sealedBytes.includes(d) && !sealedBytes.includes('"kty"'), 'not merely base64-encoded');
      for (const m of PRIVATE_MEMBERS) assert.equal(row.public_jwk[m], undefined, `public_jwk must not hold ${m}`);
    }
  });

  it('signs each client\'s ID tokens with the active key of its algorithm', async () => {
    for (const alg of ALGS) {
      const token = await idToken(alg);
      const { header } = verifyJwt(token, await fetchJwks(server.url));
      assert.equal(header.alg, alg);
      assert.equal(header.kid, firstKids.get(alg));
      signedBefore.set(alg, token);
    }
  });

  it('a rotation publishes the new keys at once, but they sign nothing until every instance has had two key refreshes to publish them', async () => {
    const { store } = server.server.services;
    newKids = await rotateSigningKeys(store, server.config);
    assert.equal(newKids.length, 3);
    assert.ok(await server.server.app.providers.refresh(), 'the provider is rebuilt with the new key set');
    assert.equal(await server.server.app.providers.refresh(), false, 'and only once');

    const keys = await fetchJwks(server.url);
    assert.equal(keys.length, 6, 'the old and the new keys are published');
    const stored = await rows();
    for (const row of stored.filter((r) => newKids.includes(r.kid))) {
      assert.equal(row.state, 'next');
      const waits = (row.activates_at!.getTime() - row.created_at.getTime()) / 1000;
      assert.ok(Math.abs(waits - activationDelay(server.config)) < 5, `the new key signs after ${waits}s, expected ${activationDelay(server.config)}s`);
    }
    assert.equal(activationDelay(server.config), 2 * server.config.keys.refreshSeconds);
    assert.deepEqual(stored.filter((r) => r.state === 'active').map((r) => r.kid).sort(), [...firstKids.values()].sort(), 'the old keys still sign');
    for (const alg of ALGS) assert.equal(decodeJwt(await idToken(alg)).header.kid, firstKids.get(alg), `${alg}: still signed with the old key`);
    assert.deepEqual(await store.signingKeys.promoteDue(publicationWindow(server.config)), [], 'nothing is due yet');
  });

  it('when their time comes, one refresh promotes the new keys (once, however many instances try) and retires the old ones, still published for the tokens they signed', async () => {
    const { store, database } = server.server.services;
    await database.knex('signing_keys').whereIn('kid', newKids).update({ activates_at: database.knex.raw(`now() - interval '1 second'`) });
    const tries = await Promise.all([store.signingKeys.promoteDue(publicationWindow(server.config)), store.signingKeys.promoteDue(publicationWindow(server.config))]);
    assert.deepEqual(tries.flat().sort(), [...newKids].sort(), 'each key promoted exactly once');
    assert.ok(await server.server.app.providers.refresh(), 'the provider is rebuilt with the promoted keys');

    const keys = await fetchJwks(server.url);
    assert.equal(keys.length, 6);
    assert.equal(new Set(keys.map((k) => k.kid)).size, 6, 'every key has a distinct kid');
    const byAlg = kidsByAlg(keys);
    for (const alg of ALGS) {
      assert.ok(byAlg.get(alg)!.includes(firstKids.get(alg)!), `the old ${alg} key is still published`);
      assert.ok(newKids.some((kid) => byAlg.get(alg)!.includes(kid)), `the new ${alg} key is published`);
    }

    const stored = await rows();
    const window = publicationWindow(server.config);
    assert.ok(window >= server.config.ttl.idToken && window >= server.config.ttl.accessToken);
    for (const row of stored.filter((r) => [...firstKids.values()].includes(r.kid))) {
      assert.equal(row.state, 'retired');
      const kept = (row.expires_at!.getTime() - row.retired_at!.getTime()) / 1000;
      assert.ok(Math.abs(kept - window) < 5, `retired key published for ${kept}s, expected ${window}s`);
    }
    assert.equal(stored.filter((r) => r.state === 'active').length, 3, 'one active key per algorithm');
    assert.ok(stored.filter((r) => newKids.includes(r.kid)).every((r) => r.state === 'active' && r.activates_at === null));
  });

  it('still verifies an ID token signed before the rotation against the new JWKS', async () => {
    const keys = await fetchJwks(server.url);
    for (const alg of ALGS) {
      const { header, payload } = verifyJwt(signedBefore.get(alg)!, keys);
      assert.equal(header.kid, firstKids.get(alg));
      assert.equal(payload.iss, server.url);
    }
  });

  it('signs new ID tokens with the new kid, which relying parties verify', async () => {
    const keys = await fetchJwks(server.url);
    for (const alg of ALGS) {
      const token = await idToken(alg);
      const { header } = verifyJwt(token, keys);
      assert.equal(header.alg, alg);
      assert.ok(newKids.includes(header.kid!), `${alg} ID token signed with a new key`);
      assert.notEqual(header.kid, firstKids.get(alg));
    }
  });

  it('drops a retired key from the JWKS once its publication window has passed', async () => {
    const { knex } = server.server.services.database;
    const old = [...firstKids.values()];
    // Purge before the window passes removes nothing.
    assert.equal(await server.server.services.store.signingKeys.purge(), 0);
    await knex('signing_keys').whereIn('kid', old).update({ expires_at: knex.raw(`now() - interval '1 second'`) });
    assert.equal(await server.server.services.store.signingKeys.purge(), 3);
    assert.ok(await server.server.app.providers.refresh());

    const keys = await fetchJwks(server.url);
    assert.equal(keys.length, 3);
    assert.deepEqual(keys.map((k) => k.kid).sort(), [...newKids].sort());
    assert.equal((await rows()).length, 3);
    assert.throws(() => verifyJwt(signedBefore.get('RS256')!, keys), /no key with kid/, 'the old token no longer verifies');
    assert.ok(decodeJwt(await idToken('RS256')).header.kid === newKids.find((kid) => kidsByAlg(keys).get('RS256')!.includes(kid)));
  });

  it('rotates one algorithm alone, at once when asked (a key thought compromised), leaving the others untouched', async () => {
    const [kid] = await rotateSigningKeys(server.server.services.store, server.config, ['EdDSA'], { now: true });
    await server.server.app.providers.refresh();
    const byAlg = kidsByAlg(await fetchJwks(server.url));
    assert.equal(byAlg.get('EdDSA')!.length, 2);
    assert.ok(byAlg.get('EdDSA')!.includes(kid!));
    assert.equal(byAlg.get('RS256')!.length, 1);
    assert.equal(byAlg.get('ES256')!.length, 1);
    assert.equal(decodeJwt(await idToken('EdDSA')).header.kid, kid);
  });
});
