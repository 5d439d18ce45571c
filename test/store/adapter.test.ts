import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { purgeExpired } from '../../src/maintenance.ts';
import { createAdapterClass } from '../../src/oidc/adapter.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('the oidc-provider adapter on the database', () => {
  let server: TestServer;
  let Adapter: ReturnType<typeof createAdapterClass>;
  before(async () => {
    server = await startTestServer();
    Adapter = createAdapterClass(server.server.services.store, 3600);
  });
  after(() => server.stop());

  it('stores, finds and updates a payload per model', async () => {
    const codes = new Adapter('AuthorizationCode');
    const tokens = new Adapter('AccessToken');
    await codes.upsert('same-id', { grantId: 'g1', kind: 'AuthorizationCode', jti: 'same-id' } as never, 60);
    await tokens.upsert('same-id', { grantId: 'g1', kind: 'AccessToken', jti: 'same-id' } as never, 60);
    assert.equal((await codes.find('same-id'))?.kind, 'AuthorizationCode', 'models do not collide on one id');
    await codes.upsert('same-id', { grantId: 'g1', kind: 'AuthorizationCode', jti: 'same-id', scope: 'openid' } as never, 60);
    assert.equal((await codes.find('same-id'))?.scope, 'openid');
    assert.equal(await codes.find('missing'), undefined);
  });

  it('marks a payload consumed once, with the time', async () => {
    const codes = new Adapter('AuthorizationCode');
    await codes.upsert('c1', { jti: 'c1' } as never, 60);
    assert.equal((await codes.find('c1'))?.consumed, undefined);
    await codes.consume('c1');
    const first = (await codes.find('c1'))?.consumed;
    assert.equal(typeof first, 'number');
    await sleep(1100);
    await assert.rejects(codes.consume('c1'), (err: { error?: string }) => err.error === 'invalid_grant', 'a second consume fails');
    assert.equal((await codes.find('c1'))?.consumed, first, 'consuming again keeps the first time');
  });

  it('finds by uid and by user code', async () => {
    const sessions = new Adapter('Session');
    await sessions.upsert('s1', { uid: 'uid-1', jti: 's1' } as never, 60);
    assert.equal((await sessions.findByUid('uid-1'))?.jti, 's1');
    const devices = new Adapter('DeviceCode');
    await devices.upsert('d1', { userCode: 'ABCD-EFGH', jti: 'd1' } as never, 60);
    assert.equal((await devices.findByUserCode('ABCD-EFGH'))?.jti, 'd1');
  });

  it('revokes by grant only the rows of that model and that grant', async () => {
    const at = new Adapter('AccessToken');
    const rt = new Adapter('RefreshToken');
    await at.upsert('a1', { grantId: 'G', jti: 'a1' } as never, 60);
    await at.upsert('a2', { grantId: 'other', jti: 'a2' } as never, 60);
    await rt.upsert('r1', { grantId: 'G', jti: 'r1' } as never, 60);
    await at.revokeByGrantId('G');
    assert.equal(await at.find('a1'), undefined);
    assert.ok(await at.find('a2'));
    assert.ok(await rt.find('r1'), 'another model is revoked by its own call');
    await rt.revokeByGrantId('G');
    assert.equal(await rt.find('r1'), undefined);
  });

  it('revokes a destroyed grant for good: its tokens go, one stored afterwards is refused, and none is found', async () => {
    const grants = new Adapter('Grant');
    const at = new Adapter('AccessToken');
    const rt = new Adapter('RefreshToken');
    await grants.upsert('GX', { jti: 'GX' } as never, 600);
    await at.upsert('x1', { grantId: 'GX', jti: 'x1' } as never, 60);
    await rt.upsert('x2', { grantId: 'GX', jti: 'x2' } as never, 60);
    await at.upsert('y1', { grantId: 'GY', jti: 'y1' } as never, 60);
    await grants.destroy('GX');
    assert.equal(await grants.find('GX'), undefined);
    assert.equal(await at.find('x1'), undefined);
    assert.equal(await rt.find('x2'), undefined);
    await assert.rejects(at.upsert('x3', { grantId: 'GX', jti: 'x3' } as never, 60), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    assert.equal(await at.find('x3'), undefined);
    // A token stored by a request that checked before the mark was written is never found either.
    await server.server.services.database.knex('oidc_payloads').insert({ kind: 'AccessToken', id: 'x4', payload: { grantId: 'GX', jti: 'x4' }, grant_id: 'GX', expires_at: new Date(Date.now() + 60_000) });
    assert.equal(await at.find('x4'), undefined);
    assert.ok(await at.find('y1'), 'another grant is untouched');
  });

  it("revokes every grant of an account for good (a password reset, \"This wasn't me\"): a refresh answered meanwhile stores nothing that is found", async () => {
    const grants = new Adapter('Grant');
    const rt = new Adapter('RefreshToken');
    const at = new Adapter('AccessToken');
    await grants.upsert('GA1', { jti: 'GA1', accountId: 'acct-a' } as never, 600);
    await rt.upsert('a1', { grantId: 'GA1', jti: 'a1', accountId: 'acct-a' } as never, 600);
    // A grant whose Grant row is already gone still has a token: that grant is marked too.
    await at.upsert('a2', { grantId: 'GA2', jti: 'a2', accountId: 'acct-a' } as never, 60);
    await grants.upsert('GB', { jti: 'GB', accountId: 'acct-b' } as never, 600);
    await rt.upsert('b1', { grantId: 'GB', jti: 'b1', accountId: 'acct-b' } as never, 600);
    await server.server.services.store.oidc.revokeAccountTokens('acct-a', 3600);
    assert.equal(await grants.find('GA1'), undefined, 'the grant is gone');
    assert.equal(await rt.find('a1'), undefined);
    assert.equal(await at.find('a2'), undefined);
    // The rotation of a1 that another instance was answering: refused, for either grant.
    await assert.rejects(rt.upsert('a3', { grantId: 'GA1', jti: 'a3', accountId: 'acct-a' } as never, 600), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    await assert.rejects(at.upsert('a4', { grantId: 'GA2', jti: 'a4', accountId: 'acct-a' } as never, 60), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    // One that checked before the mark was written (stored in between) is never found.
    await server.server.services.database.knex('oidc_payloads').insert({ kind: 'RefreshToken', id: 'a5', payload: { grantId: 'GA1', jti: 'a5', accountId: 'acct-a' }, grant_id: 'GA1', account_id: 'acct-a', expires_at: new Date(Date.now() + 60_000) });
    assert.equal(await rt.find('a5'), undefined);
    assert.ok(await grants.find('GB'), "another account's grant is untouched");
    assert.ok(await rt.find('b1'));
  });

  it('revokes the grant of a code that is consumed twice, the second time alongside the first', async () => {
    const codes = new Adapter('AuthorizationCode');
    const at = new Adapter('AccessToken');
    await codes.upsert('twice', { grantId: 'GZ', jti: 'twice' } as never, 60);
    await codes.consume('twice');
    await at.upsert('z1', { grantId: 'GZ', jti: 'z1' } as never, 60);
    await assert.rejects(codes.consume('twice'), (err: Error & { error?: string }) => err.error === 'invalid_grant');
    assert.equal(await at.find('z1'), undefined, 'what the first use issued is revoked');
  });

  it('lets exactly one of 20 parallel consumes of one code succeed', async () => {
    const codes = new Adapter('AuthorizationCode');
    await codes.upsert('race', { jti: 'race' } as never, 60);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.consume('race')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });

  it('hides expired rows at once and purges them', async () => {
    const at = new Adapter('AccessToken');
    await at.upsert('short', { jti: 'short' } as never, 1);
    await at.upsert('long', { jti: 'long' } as never, 600);
    assert.ok(await at.find('short'));
    await sleep(1200);
    assert.equal(await at.find('short'), undefined, 'expired is invisible before the purge');
    const counts = await purgeExpired(server.server.services);
    assert.ok(counts.oidc! >= 1);
    const left = await server.server.services.database.knex('oidc_payloads').where({ kind: 'AccessToken' }).pluck('id');
    assert.ok(!left.includes('short'));
    assert.ok(left.includes('long'));
  });

  it('never lets oidc-provider write a client: clients are registered through Latchkey', async () => {
    await assert.rejects(new Adapter('Client').upsert('x', {} as never, 60));
  });
});
