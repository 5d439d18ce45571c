/**
 * One user's detail as administrators read it (`showUser`, the console's user page and the API's): the
 * methods with their last use and never a secret, the lock, the recent security activity; an audited read
 * (`users.show`), refused to a role without `users.read` and to a missing user, both as denied rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { showUser } from '../../src/admin/operations/user-detail.ts';
import { disableUser } from '../../src/admin/operations/user-access.ts';
import { accountKey } from '../../src/security/attempts.ts';
import type { Role } from '../../src/store/users.ts';
import { addRecoveryCodes, addTotp } from '../helpers/two-step.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const actor = (userId: string, roles: Role[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.7', userAgent: 'Detail test', acr: 'urn:latchkey:acr:mfa' });

describe('showUser', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const knex = () => services().database.knex;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('carries the methods with their last use, the lock and the activity, no secret, and leaves a users.show row', async () => {
    const admin = await server.newUser('detail-admin');
    await services().store.users.changeRoles(admin.id, { grant: ['admin'] });
    const user = await server.newUser('detail-user');
    const totp = await addTotp(services().store, user.id, 'Work phone');
    await services().store.authenticators.markUsed(totp.id);
    await addRecoveryCodes(services().store, user.id, 10);
    await disableUser(services(), actor(admin.id, ['admin']), user.id);

    const detail = await showUser(services(), actor(admin.id, ['admin']), user.email);
    assert.equal(detail.id, user.id);
    assert.equal(detail.status, 'disabled');
    assert.equal(detail.locked, false);
    assert.equal(detail.recoveryCodesLeft, 10);
    const method = detail.methods.find((m) => m.id === totp.id);
    assert.ok(method, 'the authenticator app is listed');
    assert.equal(method.kind, 'totp');
    assert.equal(method.label, 'Work phone');
    assert.equal(method.possession, true);
    assert.ok(method.lastUsedAt instanceof Date, 'its last use');
    assert.equal(detail.methods.find((m) => m.kind === 'recovery-code')?.possession, false);
    assert.ok(!JSON.stringify(detail).includes(totp.seed), 'the seed never leaves the store');
    assert.ok(!('secret' in method) && !('secretHash' in method));
    assert.equal(detail.events[0]?.type, 'user.disabled', 'the latest event first');
    assert.equal(detail.events[0]?.details.by, admin.id);

    const row = await knex()('audit_log').orderBy('seq', 'desc').first();
    assert.equal(row.action, 'users.show');
    assert.equal(row.result, 'ok');
    assert.equal(row.actor_id, admin.id);
    assert.equal(row.actor_acr, 'urn:latchkey:acr:mfa');
    assert.equal(row.target_id, user.id);
  });

  it('shows a lock after too many failed sign-ins', async () => {
    const user = await server.newUser('detail-locked');
    await knex()('counters').insert({ key: accountKey(user.email), count: services().config.throttle.lockAfter, expires_at: knex().raw(`now() + interval '1 hour'`) });
    const detail = await showUser(services(), { via: 'cli' }, user.id);
    assert.equal(detail.locked, true);
  });

  it('refuses a role without users.read, and a missing user, as denied rows', async () => {
    const nobody = await server.newUser('detail-nobody');
    const user = await server.newUser('detail-target');
    await assert.rejects(showUser(services(), actor(nobody.id, []), user.id), (e) => e instanceof OperationError && e.status === 403);
    let row = await knex()('audit_log').orderBy('seq', 'desc').first();
    assert.deepEqual([row.action, row.result, row.actor_id, row.target_id], ['users.show', 'denied', nobody.id, user.id]);
    await assert.rejects(showUser(services(), { via: 'cli' }, 'no-one@example.com'), (e) => e instanceof OperationError && e.status === 404);
    row = await knex()('audit_log').orderBy('seq', 'desc').first();
    assert.deepEqual([row.action, row.result], ['users.show', 'denied']);
  });

  it('lets an auditor read an account that holds a role, and not a help desk', async () => {
    const holder = await server.newUser('detail-holder');
    await services().store.users.changeRoles(holder.id, { grant: ['auditor'] });
    const auditor = await server.newUser('detail-auditor');
    const helpdesk = await server.newUser('detail-helpdesk');
    assert.equal((await showUser(services(), actor(auditor.id, ['auditor']), holder.id)).id, holder.id);
    await assert.rejects(showUser(services(), actor(helpdesk.id, ['helpdesk']), holder.id), (e) => e instanceof OperationError && e.status === 403);
  });
});
