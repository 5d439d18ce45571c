/**
 * `latchkey admin break-glass`: with administrators who can no longer sign in, the machine's operator gets a
 * single-use link that creates a new administrator. The link works once and for 15 minutes, appears in no
 * audit row or log line, and both its issue (actor: the CLI) and its use are in the audit log; nothing but
 * the CLI may issue one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCommand } from '../../src/admin/commands.ts';
import { breakGlass } from '../../src/admin/operations/break-glass.ts';
import { CookieClient } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('break-glass: an emergency administrator link for the machine\'s operator', () => {
  let server: TestServer;
  const services = () => server.server.services;
  const cli = (...argv: string[]) => runCommand(argv, services(), { stdin: async () => '' });
  const auditRows = async () => (await services().database.knex('audit_log').orderBy('seq')) as { action: string; result: string; actor_type: string; actor_id: string | null; reason: string | null; before: unknown; after: unknown }[];

  before(async () => {
    server = await startTestServer();
    // An administrator exists (so the first start's link is gone) but, as far as this test goes, cannot sign in.
    await server.addUser({ email: 'locked-out@example.com', password: 'the admin lost this password', admin: true });
  });
  after(() => server?.stop());

  it('prints a link that creates an administrator once; its issue and its use are audited, the link is nowhere in the log', async () => {
    const run = await cli('admin', 'break-glass', '--json');
    assert.equal(run.code, 0, run.stderr);
    const { link, expiresAt } = JSON.parse(run.stdout) as { link: string; expiresAt: string };
    assert.match(link, new RegExp(`^${server.url}/setup\\?token=[A-Za-z0-9_-]{43}$`));
    const minutes = (Date.parse(expiresAt) - Date.now()) / 60_000;
    assert.ok(minutes > 14 && minutes <= 15, `works for 15 minutes (${minutes})`);

    const browser = new CookieClient(server.url);
    const page = await browser.follow(link);
    assert.equal(page.status, 200);
    assert.match(page.body, /Emergency access: create an administrator/);
    const done = await browser.submit(page, '/setup', { name: 'Operator', email: 'operator@example.com', password: 'a long emergency passphrase' });
    assert.equal(done.status, 200, done.body);
    const made = await services().store.users.findByEmail('operator@example.com');
    assert.deepEqual(made?.roles, ['admin']);

    const again = await browser.follow(link);
    assert.equal(again.status, 404, 'the link works once');

    const token = new URL(link).searchParams.get('token')!;
    const rows = await auditRows();
    assert.ok(!JSON.stringify(rows).includes(token), 'no audit row holds the link');
    assert.ok(!server.logText().includes(token), 'no log line holds the link');
    const issued = rows.find((r) => r.action === 'admin.break_glass');
    assert.deepEqual([issued?.result, issued?.actor_type, issued?.actor_id], ['ok', 'cli', null]);
    const used = rows.find((r) => r.action === 'setup.break_glass_admin');
    assert.deepEqual([used?.result, used?.actor_type, used?.actor_id], ['ok', 'user', made!.id]);
  });

  it('the text form says what the link does; a later link kills an unused earlier one', async () => {
    const first = await cli('admin', 'break-glass');
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^Open this single-use link within 15 minutes \(until \S+\) to create an administrator account:\n {2}http\S+\n/);
    const firstLink = /(http\S+)/.exec(first.stdout)![1]!;
    const second = JSON.parse((await cli('admin', 'break-glass', '--json')).stdout) as { link: string };
    const browser = new CookieClient(server.url);
    assert.equal((await browser.follow(firstLink)).status, 404, 'the earlier link died');
    assert.equal((await browser.follow(second.link)).status, 200);
  });

  it('only the CLI issues one: an administrator in the console or a client of the API is refused, and the refusal is audited', async () => {
    const admin = (await services().store.users.findByEmail('operator@example.com'))!;
    await assert.rejects(
      breakGlass(services(), { via: 'console', userId: admin.id, roles: ['admin'], ip: '127.0.0.1', userAgent: null, acr: 'urn:latchkey:acr:mfa' }),
      (err: Error & { status?: number }) => err.status === 403 && /server's machine only/.test(err.message),
    );
    const refusal = (await auditRows()).filter((r) => r.action === 'admin.break_glass').at(-1);
    assert.deepEqual([refusal?.result, refusal?.actor_type, refusal?.actor_id], ['denied', 'user', admin.id]);
    assert.match(refusal?.reason ?? '', /break_glass\.cli_only/);
  });
});
