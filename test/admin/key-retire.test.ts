/**
 * Retiring one signing key (`retireKey`, `latchkey keys retire`): the way to give up an algorithm. The key
 * signs nothing new from the next key refresh on, stays in the JWKS until every token it may have signed
 * has expired (the rotation's rule), and those tokens verify meanwhile. A key the provider still needs is
 * refused with the reason, and with the way to replace it (a rotation).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCommand, type CommandResult } from '../../src/admin/commands.ts';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { addClient, updateClient } from '../../src/admin/operations/clients.ts';
import { retireKey } from '../../src/admin/operations/keys.ts';
import { ensureSigningKeys, publicationWindow } from '../../src/oidc/keys.ts';
import { CookieClient } from '../helpers/browser.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const cli: Actor = { via: 'cli', requestId: 'req-key-retire' };
const consoleActor = (userId: string, roles: ('admin' | 'helpdesk' | 'auditor')[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.50', userAgent: 'Console browser' });
const refusal = (p: Promise<unknown>): Promise<OperationError> => p.then(() => assert.fail('accepted'), (err: unknown) => err as OperationError);

describe('retiring a signing key', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  const run = (...argv: string[]): Promise<CommandResult> => runCommand(argv, services(), { stdin: async () => '' });
  const user = { email: 'ivy@example.com', password: 'ivy gives up an algorithm', id: '' };
  /** An app that has its ID tokens signed with ES256, the algorithm given up. */
  let legacy: Awaited<ReturnType<TestServer['addClient']>>;
  let esKid: string;
  let rsKid: string;
  /** An ID token the ES256 key signed before it was retired. */
  let signedBefore: string;

  const activeKid = async (alg: string) => (await services().store.signingKeys.list()).find((k) => k.alg === alg && k.state === 'active')!.kid;
  const idToken = async () => (await (await RelyingParty.create(server.url, legacy)).signIn(new CookieClient(server.url), user)).tokens.id_token!;

  /** Waits until the running server's JWKS satisfies `check` (it looks for key changes every second here). */
  async function jwksUntil(check: (keys: Awaited<ReturnType<typeof fetchJwks>>) => boolean, what: string) {
    const end = Date.now() + 4000;
    for (;;) {
      const keys = await fetchJwks(server.url);
      if (check(keys)) return keys;
      if (Date.now() > end) assert.fail(`not within 4 s: ${what}`);
      await sleep(100);
    }
  }

  before(async () => {
    // ES256 was configured once and has been taken out of keys.algorithms: its key is still active.
    server = await startTestServer({ config: { keys: { algorithms: ['RS256', 'EdDSA'], refreshSeconds: 1 } } });
    await ensureSigningKeys(services().store, { ...server.config, keys: { ...server.config.keys, algorithms: ['ES256'] } });
    await server.server.app.providers.refresh();
    user.id = (await server.addUser(user)).id;
    legacy = await server.addClient({ name: 'Legacy', redirectUris: ['http://localhost:9999/cb'], idTokenAlg: 'ES256' });
    esKid = await activeKid('ES256');
    rsKid = await activeKid('RS256');
  });
  after(() => server.stop());

  it('refuses a key the provider still needs, saying why and what to do instead; an unknown kid is not found', async () => {
    const configured = await refusal(retireKey(services(), cli, rsKid));
    assert.deepEqual([configured.status, configured.code], [409, 'keys.needed']);
    assert.match(configured.message, /RS256 is in keys\.algorithms/);
    assert.match(configured.message, /rotate it instead \(keys rotate --alg RS256\)/);
    const used = await refusal(retireKey(services(), cli, esKid));
    assert.equal(used.code, 'keys.needed');
    assert.match(used.message, new RegExp(`client\\(s\\) Legacy \\(${legacy.clientId}\\) use ES256`));
    assert.doesNotMatch(used.message, /keys\.algorithms/, 'ES256 is no longer configured');
    assert.equal((await refusal(retireKey(services(), cli, 'no-such-kid'))).status, 404);
    assert.equal(await activeKid('ES256'), esKid, 'still active');
  });

  it('is for administrators: a help-desk account and an auditor are refused, and the refusals are audited', async () => {
    const seq = Number((await knex()('audit_log').max('seq as seq').first())?.seq ?? 0);
    for (const role of ['helpdesk', 'auditor'] as const) {
      const who = await server.newUser(role);
      await knex()('users').where({ id: who.id }).update({ roles: JSON.stringify([role]) });
      const err = await refusal(retireKey(services(), consoleActor(who.id, [role]), esKid));
      assert.deepEqual([err.status, err.code], [403, 'permission.denied']);
    }
    const rows = await knex()('audit_log').where('seq', '>', seq).orderBy('seq');
    assert.deepEqual(rows.map((r) => [r.action, r.result, r.target_id]), [['keys.retire', 'denied', esKid], ['keys.retire', 'denied', esKid]]);
    assert.equal(await activeKid('ES256'), esKid);
  });

  it('a retired key signs nothing new: the app\'s next ID token has another kid, and no client may ask for its algorithm any more', async () => {
    signedBefore = await idToken();
    assert.equal(decodeJwt(signedBefore).header.kid, esKid);
    // The app moves to RS256 first, which leaves ES256 unused.
    await updateClient(services(), cli, legacy.clientId, { idTokenAlg: 'RS256' });
    legacy = { ...legacy, metadata: { ...legacy.metadata, id_token_signed_response_alg: 'RS256' } };

    const res = await run('keys', 'retire', esKid);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^retired ES256 key ${esKid}: it signs nothing more and stays in the JWKS until \\S+Z, when the tokens it signed have expired; running servers stop signing with it within 1 s\n$`));
    // The running server sees it on its next key refresh (keys.refreshSeconds).
    await jwksUntil((keys) => keys.some((k) => k.kid === esKid && JSON.stringify(k.key_ops) === '["verify"]'), 'the retired key is published for verifying only');

    const next = decodeJwt(await idToken());
    assert.equal(next.header.alg, 'RS256');
    assert.equal(next.header.kid, rsKid);
    assert.notEqual(next.header.kid, esKid);
    await assert.rejects(addClient(services(), cli, { name: 'Late', redirectUris: ['http://localhost:9999/cb'], idTokenAlg: 'ES256' }),
      /ID token algorithm ES256 has no active signing key/);
    await assert.rejects(updateClient(services(), cli, legacy.clientId, { idTokenAlg: 'ES256' }), /ID token algorithm ES256 has no active signing key/);
  });

  it('keeps the retired key in /jwks until every token it may have signed has expired, and what it signed still verifies meanwhile', async () => {
    const keys = await fetchJwks(server.url);
    assert.ok(keys.some((k) => k.kid === esKid), 'still published');
    const { payload } = verifyJwt(signedBefore, keys);
    assert.equal(payload.sub, user.id);
    const [row] = await knex()('signing_keys').where({ kid: esKid });
    assert.equal(row.state, 'retired');
    const kept = (row.expires_at.getTime() - row.retired_at.getTime()) / 1000;
    assert.ok(Math.abs(kept - publicationWindow(server.config)) < 5, `published ${kept} s after retiring, the rotation's window`);
    assert.ok(publicationWindow(server.config) > server.config.ttl.idToken);
    const listed = JSON.parse((await run('keys', 'list', '--json')).stdout) as { kid: string; state: string; publishedUntil: string }[];
    assert.deepEqual(listed.filter((k) => k.kid === esKid).map((k) => [k.state, k.publishedUntil]), [['retired', row.expires_at.toISOString()]]);

    // Once the window has passed (moved into the past here), it leaves the JWKS at the next refresh.
    await knex()('signing_keys').where({ kid: esKid }).update({ expires_at: knex().raw(`now() - interval '1 second'`) });
    const after = await jwksUntil((k) => !k.some((x) => x.kid === esKid), 'the expired key is dropped');
    assert.throws(() => verifyJwt(signedBefore, after), /no key with kid/, 'its token has expired by now: nothing verifies it');
  });

  it('keys retire: refuses an already retired key, audits the retirement with the key before and after, and explains itself in --help', async () => {
    const again = await run('keys', 'retire', esKid);
    assert.equal(again.code, 2);
    assert.match(again.stderr, new RegExp(`^latchkey: ${esKid} is already retired; it stays published until `));
    const [row] = await knex()('audit_log').where({ action: 'keys.retire', result: 'ok' });
    assert.equal(row.target_id, esKid);
    assert.deepEqual([row.before.state, row.after.state, row.after.alg], ['active', 'retired', 'ES256']);
    const help = await run('keys', 'retire', '--help');
    assert.match(help.stdout, /^Usage: latchkey keys retire KID/m);
    assert.match(help.stdout, /stays in the JWKS until the tokens it signed have expired/);
    assert.match(help.stdout, /rotate that key instead/);
  });
});
