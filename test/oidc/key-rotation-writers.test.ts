/**
 * The staged rotation's writers side by side: a rotation publishes a key as `next`, each instance's key
 * refresh promotes the due ones (`promoteDue`), `keys rotate --now` and `keys retire` act at once. They take
 * one advisory lock in turn, so none deadlocks another or breaks "one active key per algorithm", and a
 * key waiting for its turn never takes up an algorithm that was given up. The races need a second
 * connection: PostgreSQL only (PGlite has one).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Actor } from '../../src/admin/operations/actor.ts';
import { retireKey } from '../../src/admin/operations/keys.ts';
import { ensureSigningKeys, publicationWindow, rotateSigningKeys } from '../../src/oidc/keys.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const cli: Actor = { via: 'cli', requestId: 'req-key-writers' };

describe('signing-key writers side by side', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  const keys = async (alg: string) => (await services().store.signingKeys.list()).filter((k) => k.alg === alg);
  const makeDue = (kids: string[]) => knex()('signing_keys').whereIn('kid', kids).update({ activates_at: knex().raw(`now() - interval '1 second'`) });
  const promote = () => services().store.signingKeys.promoteDue(publicationWindow(server.config));

  before(async () => {
    // ES256 was configured once and has been given up: its key is still active, and nothing needs it.
    server = await startTestServer({ config: { keys: { algorithms: ['RS256'] } } });
    await ensureSigningKeys(services().store, { ...server.config, keys: { ...server.config.keys, algorithms: ['ES256'] } });
  });
  after(() => server.stop());

  it('retiring a key whose algorithm is given up withdraws the key waiting for its turn: it never takes the algorithm up again', async () => {
    const [waiting] = await rotateSigningKeys(services().store, server.config, ['ES256']);
    const active = (await keys('ES256')).find((k) => k.state === 'active')!;
    await retireKey(services(), cli, active.kid);
    assert.equal((await keys('ES256')).find((k) => k.kid === waiting)?.state, 'retired');
    await makeDue([waiting!]);
    assert.deepEqual(await promote(), []);
    assert.equal((await keys('ES256')).filter((k) => k.state === 'active').length, 0, 'no ES256 key signs');
  });

  it('a waiting key may be withdrawn alone: the rotation is called off and the active key goes on', async () => {
    const active = (await keys('RS256')).find((k) => k.state === 'active')!;
    const [waiting] = await rotateSigningKeys(services().store, server.config, ['RS256']);
    const withdrawn = await retireKey(services(), cli, waiting!);
    assert.equal(withdrawn.state, 'retired');
    await makeDue([waiting!]);
    assert.deepEqual(await promote(), []);
    assert.deepEqual((await keys('RS256')).filter((k) => k.state === 'active').map((k) => k.kid), [active.kid]);
  });

  it('two rotations in a row: the later key wins, the earlier one never signs', async () => {
    const [first] = await rotateSigningKeys(services().store, server.config, ['RS256']);
    const [second] = await rotateSigningKeys(services().store, server.config, ['RS256']);
    await makeDue([second!]);
    await knex()('signing_keys').where({ kid: first }).update({ activates_at: knex().raw(`now() - interval '2 seconds'`) });
    assert.deepEqual(await promote(), [second]);
    const rs = await keys('RS256');
    assert.deepEqual(rs.filter((k) => k.state === 'active').map((k) => k.kid), [second]);
    assert.equal(rs.find((k) => k.kid === first)?.state, 'retired');
  });

  it('a promotion and `rotate --now` at the same moment: neither fails, one RS256 key is active', { skip: !TEST_DATABASE_URL && 'needs a second connection (PostgreSQL)' }, async () => {
    for (let round = 0; round < 15; round++) {
      const [waiting] = await rotateSigningKeys(services().store, server.config, ['RS256']);
      await makeDue([waiting!]);
      const [promoted, now] = await Promise.all([promote(), rotateSigningKeys(services().store, server.config, ['RS256'], { now: true })]);
      const active = (await keys('RS256')).filter((k) => k.state === 'active').map((k) => k.kid);
      assert.deepEqual(active, now, `round ${round}: the key rotated in at once is the active one (promoted: ${promoted.join(',') || 'none'})`);
      assert.equal((await keys('RS256')).filter((k) => k.state === 'next').length, 0);
    }
  });

  it('two instances promoting two due keys of one algorithm at once: neither fails, the newest is the one active key', { skip: !TEST_DATABASE_URL && 'needs a second connection (PostgreSQL)' }, async () => {
    for (let round = 0; round < 15; round++) {
      const [older] = await rotateSigningKeys(services().store, server.config, ['RS256']);
      const [newer] = await rotateSigningKeys(services().store, server.config, ['RS256']);
      await makeDue([older!, newer!]);
      await knex()('signing_keys').where({ kid: older }).update({ activates_at: knex().raw(`now() - interval '2 seconds'`) });
      const results = await Promise.all([promote(), promote(), promote()]);
      // Another instance's promotion may still hold the lock: whoever missed it tries at its next refresh.
      if (!results.flat().length) assert.deepEqual(await promote(), [newer]);
      else assert.deepEqual(results.flat(), [newer]);
      assert.deepEqual((await keys('RS256')).filter((k) => k.state === 'active').map((k) => k.kid), [newer]);
    }
  });
});
