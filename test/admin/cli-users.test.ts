/**
 * The `latchkey users …` commands that administer users, end to end as real processes on the run's
 * database (PostgreSQL when LATCHKEY_TEST_DATABASE_URL is set, else the embedded database in a data
 * directory of its own): search with filters and pages, invitations mailed through a real SMTP server,
 * roles, disable/enable/unlock, sessions, reset links and deletion; bad input is refused with exit status 2
 * and a message naming the flag; every command leaves its audit row with the CLI as actor.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../../src/paths.ts';
import { createTestDatabaseUrl, TEST_DATABASE_URL } from '../helpers/db.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('LATCHKEY_') && !k.startsWith('NODE_TEST')) env[k] = v;
  }
  return { ...env, LATCHKEY_LOG_LEVEL: 'warn', ...extra };
}

const ok = (r: Run) => {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
  return r;
};
const json = <T,>(r: Run): T => JSON.parse(ok(r).stdout) as T;

/** Exit status 2 (the input was refused), nothing on stdout, a clear message matching every pattern. */
function refused(r: Run, ...patterns: RegExp[]) {
  assert.equal(r.code, 2, `expected exit 2, got ${r.code}: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout, '');
  for (const p of patterns) assert.match(r.stderr, p);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'a clear message, not a stack trace');
}

interface UserJson { id: string; email: string; name: string | null; roles: string[]; status: string }

describe('latchkey users: administering users from the command line', { concurrency: false }, () => {
  let mailbox: MailBox;
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  const cli = (args: string[], stdin = ''): Promise<Run> => new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/admin/cli.ts', ...args], { cwd: projectRoot, env: childEnv(env), stdio: 'pipe', timeout: 60_000 });
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
    child.once('close', (code) => resolve({ code, ...out }));
    child.stdin.end(stdin);
  });
  const ids: Record<string, string> = {};

  before(async () => {
    mailbox = await startMailBox();
    if (TEST_DATABASE_URL) {
      const database = await createTestDatabaseUrl();
      env = { LATCHKEY_DATABASE_URL: database.url, LATCHKEY_SMTP_URL: mailbox.url };
      cleanup = () => database.drop();
    } else {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-cli-users-'));
      env = { LATCHKEY_DATA_DIR: dataDir, LATCHKEY_SMTP_URL: mailbox.url };
      cleanup = async () => rmSync(dataDir, { recursive: true, force: true });
    }
  });
  after(async () => {
    await cleanup?.();
    await mailbox?.stop();
  });

  it('users add makes an administrator and a user to work on', async () => {
    const root = json<UserJson>(await cli(['users', 'add', '--email', 'root@example.com', '--admin', '--password-stdin', '--json'], 'root has a long password\n'));
    const pat = json<UserJson>(await cli(['users', 'add', '--email', 'pat@example.com', '--name', 'Pat', '--password-stdin', '--json'], 'pat has a long password\n'));
    Object.assign(ids, { root: root.id, pat: pat.id });
  });

  it('users invite mails the invitee a link and prints neither the link nor a password; bad input names its flag', async () => {
    const since = mailbox.messages.length;
    const run = await cli(['users', 'invite', '--email', 'ivy@example.com', '--name', 'Ivy', '--role', 'auditor', '--json']);
    const ivy = json<UserJson & { inviteExpiresAt: string }>(run);
    ids.ivy = ivy.id;
    assert.deepEqual([ivy.email, ivy.roles, ivy.status], ['ivy@example.com', ['auditor'], 'active']);
    assert.ok(Math.abs(Date.parse(ivy.inviteExpiresAt) - Date.now() - 24 * 3600_000) < 120_000, 'works for 24 hours');
    const mail = await mailbox.next('ivy@example.com', { since, timeoutMs: 10_000 });
    assert.match(mail.subject, /You are invited/);
    const token = new URL(mailbox.link(mail)).searchParams.get('token')!;
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!(run.stdout + run.stderr).includes(token), 'the CLI never shows the link');

    const plain = ok(await cli(['users', 'invite', '--email', 'una@example.com']));
    assert.match(plain.stdout, /^invited una@example\.com \([0-9a-f-]{36}\): the link to choose a password went to that address and works once until \S+\n$/);
    const [badEmail, badRole, taken, missing] = await Promise.all([
      cli(['users', 'invite', '--email', 'not-an-address']),
      cli(['users', 'invite', '--email', 'vic@example.com', '--role', 'root']),
      cli(['users', 'invite', '--email', 'PAT@example.com']),
      cli(['users', 'invite']),
    ]);
    refused(badEmail, /--email: "not-an-address" is not a valid email address/);
    refused(badRole, /--role: a role is one of admin, helpdesk, auditor/);
    refused(taken, /a user with email PAT@example\.com already exists/);
    refused(missing, /--email is required/, /users invite --help/);
  });

  it('users search filters and pages with --cursor; a bad filter is refused', async () => {
    const first = json<{ items: UserJson[]; nextCursor: string | null }>(await cli(['users', 'search', '--query', 'EXAMPLE.COM', '--limit', '3', '--json']));
    assert.equal(first.items.length, 3);
    assert.ok(first.nextCursor);
    const rest = json<{ items: UserJson[]; nextCursor: string | null }>(await cli(['users', 'search', '--query', 'example.com', '--limit', '3', '--cursor', first.nextCursor, '--json']));
    assert.equal(rest.nextCursor, null);
    assert.deepEqual([...first.items, ...rest.items].map((u) => u.email), ['una@example.com', 'ivy@example.com', 'pat@example.com', 'root@example.com']);
    const table = ok(await cli(['users', 'search', '--query', 'pat']));
    assert.match(table.stdout, /^ID\s+EMAIL\s+NAME\s+ROLES\s+STATUS\s+CREATED\n[0-9a-f-]{36}\s+pat@example\.com\s+Pat\s+active\s+\S+\n$/);
    const paged = ok(await cli(['users', 'search', '--limit', '1']));
    assert.match(paged.stdout, /\nmore: --cursor [A-Za-z0-9_-]+\n$/);
    const [twoStep, limit, status, cursor] = await Promise.all([
      cli(['users', 'search', '--two-step', 'maybe']),
      cli(['users', 'search', '--limit', 'many']),
      cli(['users', 'search', '--status', 'gone']),
      cli(['users', 'search', '--cursor', 'garbage']),
    ]);
    refused(twoStep, /--two-step: two-step is yes or no/);
    refused(limit, /--limit: limit must be a whole number from 1 to 100/);
    refused(status, /--status: status must be one of active, disabled/);
    refused(cursor, /--cursor: not a cursor this search gave/);
    const noTwoStep = json<{ items: UserJson[] }>(await cli(['users', 'search', '--two-step', 'no', '--locked', 'no', '--json']));
    assert.equal(noTwoStep.items.length, 4);
  });

  it('users roles grants and revokes; never the last administrator\'s admin, never an unknown role', async () => {
    assert.deepEqual(json<UserJson>(await cli(['users', 'roles', 'pat@example.com', '--grant', 'helpdesk', '--grant', 'auditor', '--json'])).roles, ['helpdesk', 'auditor']);
    assert.equal(ok(await cli(['users', 'roles', ids.pat!, '--revoke', 'auditor'])).stdout, 'pat@example.com has the role(s): helpdesk\n');
    const [last, unknown, nothing, nobody] = await Promise.all([
      cli(['users', 'roles', 'root@example.com', '--revoke', 'admin']),
      cli(['users', 'roles', 'pat@example.com', '--grant', 'root']),
      cli(['users', 'roles', 'pat@example.com']),
      cli(['users', 'roles', 'nobody@example.com', '--grant', 'auditor']),
    ]);
    refused(last, /this is the last active administrator: make another one first/);
    refused(unknown, /--grant: "root" is not a role: one of admin, helpdesk, auditor/);
    refused(nothing, /--grant: name a role to grant or to revoke/);
    refused(nobody, /no user with id or email nobody@example\.com/);
    refused(await cli(['users', 'disable', 'root@example.com']), /last active administrator/);
  });

  it('users disable, enable and unlock; the search sees the status', async () => {
    assert.match(ok(await cli(['users', 'disable', 'pat@example.com'])).stdout, /^disabled pat@example\.com \([0-9a-f-]{36}\); 0 session\(s\) ended, every grant and token revoked\n$/);
    assert.deepEqual(json<{ items: UserJson[] }>(await cli(['users', 'search', '--status', 'disabled', '--json'])).items.map((u) => u.email), ['pat@example.com']);
    refused(await cli(['users', 'reset-link', 'pat@example.com']), /pat@example\.com is disabled: enable the account first/);
    assert.equal(ok(await cli(['users', 'enable', ids.pat!])).stdout, `enabled pat@example.com (${ids.pat})\n`);
    assert.equal(ok(await cli(['users', 'unlock', 'pat@example.com'])).stdout, 'pat@example.com was not locked; failed sign-ins cleared\n');
    refused(await cli(['users', 'disable']), /users disable needs a USER/);
  });

  it('users sessions, revoke-sessions, reset-link and delete', async () => {
    assert.deepEqual(json<unknown[]>(await cli(['users', 'sessions', 'pat@example.com', '--json'])), []);
    assert.equal(ok(await cli(['users', 'revoke-sessions', 'pat@example.com'])).stdout, 'ended 0 session(s); every grant and token of the account is revoked\n');
    refused(await cli(['users', 'revoke-sessions', 'pat@example.com', '--session', 'nope']), /--session: pat@example\.com has no session nope/);
    const since = mailbox.messages.length;
    assert.equal(ok(await cli(['users', 'reset-link', 'pat@example.com'])).stdout, 'sent a password reset link to pat@example.com\n');
    assert.match(mailbox.link(await mailbox.next('pat@example.com', { since, timeoutMs: 10_000 })), /\/reset\/confirm\?token=/);
    assert.equal(ok(await cli(['users', 'delete', 'una@example.com'])).stdout.startsWith('deleted una@example.com'), true);
    refused(await cli(['users', 'delete', 'una@example.com']), /no user with id or email una@example\.com/);
  });

  it('every command left its audit row with the CLI as actor, the refusals as denied; the chain verifies', async () => {
    const rows = ok(await cli(['audit', 'export'])).stdout.split('\n').filter(Boolean)
      .map((line) => JSON.parse(line) as { action: string; actor_type: string; result: string; target_id: string | null });
    assert.ok(rows.every((r) => r.actor_type === 'cli'));
    const results = (action: string) => new Set(rows.filter((r) => r.action === action).map((r) => r.result));
    for (const action of ['users.invite', 'users.search', 'users.roles', 'users.disable']) assert.deepEqual(results(action), new Set(['ok', 'denied']), action);
    for (const action of ['users.enable', 'users.unlock', 'users.sessions', 'users.revoke_sessions', 'users.reset_link', 'users.delete']) assert.ok(results(action).has('ok'), action);
    assert.ok(rows.some((r) => r.action === 'users.roles' && r.result === 'denied' && r.target_id === ids.root));
    assert.match(ok(await cli(['audit', 'verify'])).stdout, /^audit log intact/);
  });
});
