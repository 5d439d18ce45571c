/**
 * `listAudit`, the paged read the console and the API share: newest first, filtered like the export,
 * keyset pages that stay the same while rows are added, a cursor callers cannot forge into something else,
 * a limit within 1 to 100, the auditor's read allowed and the help desk's refused, each call in the log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Actor } from '../../src/admin/operations/actor.ts';
import { listAudit } from '../../src/admin/operations/audit.ts';
import { OperationError } from '../../src/admin/operations/actor.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const cli: Actor = { via: 'cli' };
const auditor: Actor = { via: 'console', userId: 'auditor-1', roles: ['auditor'], ip: '192.0.2.7', userAgent: 'test', acr: 'urn:latchkey:acr:mfa' };
const helpdesk: Actor = { via: 'console', userId: 'helpdesk-1', roles: ['helpdesk'], ip: '192.0.2.8', userAgent: 'test' };

describe('listAudit', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const append = (action: string, result: 'ok' | 'denied' = 'ok') => services().store.audit.append({
    actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId: null,
    action, targetType: 'client', targetId: `c-${action}`, result, reason: result === 'ok' ? null : 'no', before: { a: 1 }, after: { a: 2 },
  });

  before(async () => {
    server = await startTestServer();
    for (let i = 0; i < 7; i++) await append(`test.page${i}`);
  });
  after(() => server.stop());

  it('pages newest first, and the older pages stay the same while rows are added', async () => {
    const filter = { actions: ['test.page0', 'test.page1', 'test.page2', 'test.page3', 'test.page4', 'test.page5', 'test.page6', 'test.later'] };
    const first = await listAudit(services(), auditor, { ...filter, limit: 3 });
    assert.deepEqual(first.items.map((r) => r.action), ['test.page6', 'test.page5', 'test.page4']);
    assert.ok(first.nextCursor);
    assert.doesNotMatch(first.nextCursor, /^\d+$/, 'the cursor is not a bare row number');
    await append('test.later');
    await append('test.later');
    const second = await listAudit(services(), auditor, { ...filter, limit: '3', cursor: first.nextCursor });
    assert.deepEqual(second.items.map((r) => r.action), ['test.page3', 'test.page2', 'test.page1']);
    const third = await listAudit(services(), auditor, { ...filter, limit: 3, cursor: second.nextCursor! });
    assert.deepEqual(third.items.map((r) => r.action), ['test.page0']);
    assert.equal(third.nextCursor, null);
    const row = second.items[0]!;
    assert.equal(row.targetType, 'client');
    assert.equal(row.targetId, 'c-test.page3');
    assert.deepEqual([row.before, row.after], [{ a: 1 }, { a: 2 }]);
    assert.ok(row.time instanceof Date);
    const fresh = await listAudit(services(), auditor, { ...filter, limit: 2 });
    assert.deepEqual(fresh.items.map((r) => r.action), ['test.later', 'test.later'], 'a new list starts from the newest');
  });

  it('filters like the export (result, target, actor) and defaults to 50 rows', async () => {
    await append('test.refused', 'denied');
    const denied = await listAudit(services(), cli, { result: 'denied', target: 'client:c-test.refused' });
    assert.deepEqual(denied.items.map((r) => [r.action, r.result, r.reason]), [['test.refused', 'denied', 'no']]);
    for (let i = 0; i < 55; i++) await append('test.many');
    const many = await listAudit(services(), cli, { actions: ['test.many'] });
    assert.equal(many.items.length, 50);
    assert.ok(many.nextCursor);
    const mine = await listAudit(services(), cli, { actor: `user:${auditor.via === 'console' ? auditor.userId : ''}`, actions: ['audit.list'] });
    assert.ok(mine.items.length >= 3 && mine.items.every((r) => r.actorId === 'auditor-1' && r.actorAcr === 'urn:latchkey:acr:mfa'));
  });

  it('refuses a bad limit, a forged cursor and a bad filter, naming the field, and logs each refusal', async () => {
    for (const [input, field] of [
      [{ limit: 0 }, 'limit'], [{ limit: 101 }, 'limit'], [{ limit: '5x' }, 'limit'],
      [{ cursor: '42' }, 'cursor'], [{ cursor: Buffer.from('s0').toString('base64url') }, 'cursor'], [{ cursor: 'not a cursor!' }, 'cursor'],
      [{ since: 'yesterday' }, 'since'], [{ result: 'maybe' }, 'result'],
    ] as const) {
      await assert.rejects(listAudit(services(), auditor, input), (e: unknown) => e instanceof OperationError && e.status === 400 && e.field === field, JSON.stringify(input));
    }
    const refusals = await listAudit(services(), cli, { actions: ['audit.list'], result: 'denied', limit: 100 });
    assert.equal(refusals.items.length, 8);
  });

  it('an auditor reads, the help desk does not (and its attempt is in the log)', async () => {
    await assert.rejects(listAudit(services(), helpdesk, {}), (e: unknown) => e instanceof OperationError && e.status === 403);
    const rows = await listAudit(services(), cli, { actor: 'user:helpdesk-1', limit: 1 });
    assert.deepEqual(rows.items.map((r) => [r.action, r.result]), [['audit.list', 'denied']]);
  });
});
