/**
 * The operations layer the CLI, the console and the REST API share: typed input, an actor recorded with
 * every change, typed results that never carry a password hash, and refusals that name their field.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { addClient, listClients, removeClient } from '../../src/admin/operations/clients.ts';
import { listKeys, rotateKeys } from '../../src/admin/operations/keys.ts';
import { addUser, listUsers } from '../../src/admin/operations/users.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('administrative operations', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const console: Actor = { via: 'console', userId: 'admin-1', roles: ['admin'], ip: '198.51.100.4', userAgent: 'Test browser' };
  const api: Actor = { via: 'api', clientId: 'ops-client', roles: ['admin'], ip: '203.0.113.8', userAgent: null };

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('adds a user for an administrator: no password hash in the result or the list, and the event says who and from where', async () => {
    const user = await addUser(services(), console, { email: 'Nora@Example.com', name: 'Nora', password: 'nora has a long password', admin: true });
    assert.deepEqual(Object.keys(user).sort(), ['createdAt', 'email', 'id', 'name', 'roles', 'status']);
    assert.deepEqual(user.roles, ['admin']);
    for (const u of await listUsers(services(), console)) assert.equal('passwordHash' in u, false);
    const [event] = (await services().store.events.forUser(user.id)).filter((e) => e.type === 'user.created');
    assert.equal(event?.ip, '198.51.100.4');
    assert.deepEqual(event?.details, { via: 'console', by: 'admin-1', admin: true });
  });

  it('refuses bad input with the field it is about, and a duplicate with 409', async () => {
    const refusal = async (p: Promise<unknown>) => p.then(() => assert.fail('accepted'), (err: unknown) => err as OperationError);
    const email = await refusal(addUser(services(), api, { email: 'not an address', password: 'a long enough password' }));
    assert.ok(email instanceof OperationError);
    assert.deepEqual([email.status, email.field], [400, 'email']);
    const password = await refusal(addUser(services(), api, { email: 'weak@example.com', password: 'password1' }));
    assert.deepEqual([password.status, password.field, password.message], [400, 'password', 'This password is too common or has appeared in a data breach. Choose another.']);
    await addUser(services(), api, { email: 'twice@example.com', password: 'twice has a password' });
    const twice = await refusal(addUser(services(), api, { email: 'TWICE@example.com', password: 'twice has a password' }));
    assert.equal(twice.status, 409);
    assert.equal(twice.code, 'user.exists');
  });

  it('registers, lists and removes a client, recording the API client that did it', async () => {
    const client = await addClient(services(), api, { name: 'Ops app', redirectUris: ['https://ops.example.com/cb'] });
    assert.ok(client.clientSecret);
    const listed = (await listClients(services(), api)).find((c) => c.clientId === client.clientId);
    assert.equal(listed?.name, 'Ops app');
    assert.equal(JSON.stringify(listed).includes(client.clientSecret!), false, 'never the secret');
    await removeClient(services(), api, client.clientId);
    const gone = await removeClient(services(), api, client.clientId).then(() => undefined, (err: OperationError) => err);
    assert.equal(gone?.status, 404);
    const events = await services().database.knex('security_events').whereIn('type', ['client.created', 'client.removed']).orderBy('id');
    assert.deepEqual(events.slice(-2).map((e) => [e.type, e.details.byClient, e.ip]), [['client.created', 'ops-client', '203.0.113.8'], ['client.removed', 'ops-client', '203.0.113.8']]);
  });

  it('rotates keys (published first, signing later; at once when asked, dropping a key still waiting), and refuses an algorithm that is not configured', async () => {
    const before = (await listKeys(services(), console)).filter((k) => k.state === 'active').map((k) => k.kid);
    const kids = await rotateKeys(services(), console, ['ES256']);
    assert.equal(kids.length, 1);
    const after = await listKeys(services(), console);
    const waiting = after.find((k) => k.kid === kids[0]);
    assert.equal(waiting?.state, 'next');
    assert.ok(waiting.activatesAt && Math.abs(waiting.activatesAt.getTime() - waiting.createdAt.getTime() - 2000 * services().config.keys.refreshSeconds) < 5000);
    assert.equal(after.filter((k) => before.includes(k.kid) && k.alg === 'ES256')[0]?.state, 'active', 'the old key signs meanwhile');

    const [now] = await rotateKeys(services(), console, ['ES256'], { now: true });
    const later = await listKeys(services(), console);
    assert.equal(later.find((k) => k.kid === now)?.state, 'active');
    assert.equal(later.filter((k) => before.includes(k.kid) && k.alg === 'ES256')[0]?.state, 'retired');
    assert.equal(later.find((k) => k.kid === kids[0])?.state, 'retired', 'the key that was waiting never signs');
    assert.deepEqual(await services().store.signingKeys.promoteDue(0), []);
    const bad = await rotateKeys(services(), console, ['HS256']).then(() => undefined, (err: OperationError) => err);
    assert.equal(bad?.field, 'alg');
  });
});
