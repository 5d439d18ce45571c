/**
 * The console's role boundaries and step-up over HTTP, each attack tried and shown to fail, change nothing
 * and leave a denied audit row naming the signed-in administrator and their acr: a help desk acting on an
 * administrator, an auditor writing, a help desk granting roles, a sensitive action posted with a stale
 * sign-in (then the step-up: its page names the action, and it comes back to the confirmation page). The
 * step-up's action is named only for the console's client and only for a known action.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm, formsOf } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { ageSignIn, auditHead, consoleAuditRows, consoleUser, signInConsole, stepUpConsole, throughSignIn, type ConsolePerson } from './helpers.ts';

const MFA = 'urn:latchkey:acr:mfa';

/** The sections the console's navigation links to (besides its home). */
const navOf = (html: string) => [...(/<nav class="account-nav console-nav"[\s\S]*?<\/nav>/.exec(html)?.[0] ?? '').matchAll(/<li><a href="(\/admin\/[a-z]+)"/g)].map((m) => m[1]);

describe('console roles and step-up', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const store = () => server.server.services.store;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  /** Posts a form of `page` with its CSRF token (a real form of the console), without following. */
  async function postFrom(browser: CookieClient, path: string, action: string, fields: Record<string, string> = {}) {
    const page = await browser.follow(path);
    const csrf = formsOf(page.body).find((f) => f.hidden.csrf)!.hidden.csrf!;
    return browser.request(action, { form: { csrf, ...fields } });
  }

  /** The one denied row of `action` since `seq`, by `actor`. */
  async function deniedRow(seq: number, action: string, actor: ConsolePerson) {
    const rows = (await consoleAuditRows(server, seq)).filter((r) => r.action === action);
    assert.equal(rows.length, 1, `one ${action} row: ${JSON.stringify(rows)}`);
    const row = rows[0]!;
    assert.deepEqual([row.result, row.actor_type, row.actor_id, row.actor_acr], ['denied', 'user', actor.id, MFA]);
    return row;
  }

  it('refuses a help desk acting on an administrator, and shows them no button for it', async () => {
    const helpdesk = await consoleUser(server, ['helpdesk'], 'roles-hd');
    const admin = await consoleUser(server, ['admin'], 'roles-target');
    const browser = await signInConsole(server, helpdesk);
    const home = await browser.follow('/admin');
    assert.deepEqual(navOf(home.body), ['/admin/users'], 'the help desk sees Users only');

    let seq = await auditHead(server);
    const page = await browser.follow(`/admin/users/${admin.id}`);
    assert.equal(page.status, 403);
    assert.match(page.body, /only an administrator acts on an account that holds a role/);
    assert.ok(!page.body.includes(`/admin/users/${admin.id}/disable`), 'no button');
    await deniedRow(seq, 'users.show', helpdesk);

    seq = await auditHead(server);
    const res = await postFrom(browser, '/admin/users', `/admin/users/${admin.id}/disable`);
    assert.equal(res.status, 403);
    assert.match(res.body, /only an administrator acts on an account that holds a role/);
    assert.equal((await store().users.findById(admin.id))!.status, 'active');
    const row = await deniedRow(seq, 'users.disable', helpdesk);
    assert.equal(row.target_id, admin.id);

    // The help-desk reset of a role holder: the step-up passes (a fresh sign-in), the operation refuses.
    seq = await auditHead(server);
    const reset = await postFrom(browser, '/admin/users', `/admin/users/${admin.id}/two-step-reset`, { proof: 'video call', ticket: 'T-1', all: 'yes' });
    assert.equal(reset.status, 403);
    assert.deepEqual((await store().authenticators.listForUser(admin.id)).map((a) => a.kind), ['totp'], 'nothing removed');
    await deniedRow(seq, 'users.reset_two_step', helpdesk);
  });

  it('refuses an auditor writing: read-only pages, a 403 and a denied row for each write', async () => {
    const auditor = await consoleUser(server, ['auditor'], 'roles-aud');
    const user = await server.newUser('roles-plain');
    const browser = await signInConsole(server, auditor);
    const page = await browser.follow(`/admin/users/${user.id}`);
    assert.equal(page.status, 200);
    assert.match(page.body, /Read-only/);
    assert.deepEqual(formsOf(page.body).map((f) => f.action).filter((a) => a.startsWith('/admin/users')), [], 'no write form on the page');
    assert.deepEqual(navOf(page.body), ['/admin/users', '/admin/clients', '/admin/keys', '/admin/audit']);

    for (const [action, path, fields] of [
      ['users.disable', `/admin/users/${user.id}/disable`, {}],
      ['users.reset_link', `/admin/users/${user.id}/reset-link`, {}],
      ['users.revoke_sessions', `/admin/users/${user.id}/sessions/revoke`, {}],
      ['users.invite', '/admin/users/invite', { email: 'auditor-invitee@example.com' }],
    ] as const) {
      const seq = await auditHead(server);
      const res = await postFrom(browser, '/admin/users', path, fields);
      assert.equal(res.status, 403, `${path}: ${res.status}`);
      await deniedRow(seq, action, auditor);
    }
    assert.equal((await store().users.findById(user.id))!.status, 'active');
    assert.equal(await store().users.findByEmail('auditor-invitee@example.com'), undefined);
  });

  it('refuses a help desk granting a role', async () => {
    const helpdesk = await consoleUser(server, ['helpdesk'], 'roles-hdgrant');
    const user = await server.newUser('roles-grantee');
    const browser = await signInConsole(server, helpdesk);
    const page = await browser.follow(`/admin/users/${user.id}`);
    assert.ok(!page.body.includes(`/admin/users/${user.id}/roles`), 'no "Change roles" for the help desk');
    const seq = await auditHead(server);
    const res = await postFrom(browser, '/admin/users', `/admin/users/${user.id}/roles`, { 'role:admin': 'yes' });
    assert.equal(res.status, 403);
    assert.deepEqual((await store().users.findById(user.id))!.roles, []);
    await deniedRow(seq, 'users.roles', helpdesk);
  });

  it('refuses a sensitive POST with a stale sign-in, audits it, and steps up (the page names the action) back to the confirmation', async () => {
    const admin = await consoleUser(server, ['admin'], 'roles-stale');
    const user = await server.newUser('roles-victim');
    const browser = await signInConsole(server, admin);
    const confirm = await browser.follow(`/admin/users/${user.id}/delete`);
    assert.equal(confirm.status, 200, 'fresh: the confirmation page');
    const form = findForm(confirm.body, `/admin/users/${user.id}/delete`);
    // Six minutes later (console.stepUpSeconds is 300): the sign-in is no longer fresh.
    await ageSignIn(server, admin, 360);
    const seq = await auditHead(server);
    const res = await browser.request(`/admin/users/${user.id}/delete`, { form: { ...form.hidden, confirm: user.email } });
    assert.equal(res.status, 303);
    const auth = new URL(res.headers.get('location')!);
    assert.equal(auth.pathname, '/auth');
    assert.equal(auth.searchParams.get('max_age'), '300');
    assert.equal(auth.searchParams.get('acr_values'), MFA);
    assert.equal(auth.searchParams.get('latchkey_action'), 'user-delete');
    assert.ok(await store().users.findById(user.id), 'nothing deleted');
    const row = await deniedRow(seq, 'users.delete', admin);
    assert.equal(row.target_id, user.id);
    assert.match(row.reason ?? '', /^step_up_required/);

    const login = await browser.follow(auth.toString());
    assert.match(login.body, /The admin console asks you to confirm it&#39;s you to: delete a user/);
    const back = await throughSignIn(browser, server, admin, login);
    assert.equal(new URL(back.url).pathname, `/admin/users/${user.id}/delete`, 'back on the confirmation page');
    const done = await browser.submit(back, `/admin/users/${user.id}/delete`, { confirm: user.email });
    assert.equal(new URL(done.url).pathname, '/admin/users');
    assert.equal(await store().users.findById(user.id), undefined, 'deleted after the step-up');
  });

  it('steps up on a GET of a sensitive page too, and names the action on the second step\'s page', async () => {
    const admin = await consoleUser(server, ['admin'], 'roles-get');
    const user = await server.newUser('roles-get-target');
    const browser = await signInConsole(server, admin);
    await ageSignIn(server, admin, 360);
    const login = await browser.follow(`/admin/users/${user.id}/roles`);
    assert.match(login.body, /confirm it&#39;s you to: change a user&#39;s console roles/);
    const step = await browser.submit(login, '/login', { email: admin.email, password: admin.password });
    assert.match(step.body, /confirm it&#39;s you to: change a user&#39;s console roles/, 'on the verification page too');
    const page = await stepUpConsole(browser, server, admin, `/admin/users/${user.id}/roles`);
    assert.match(page.body, /name="role:admin"/);
  });

  it('names no action for another app, nor an action the console does not have', async () => {
    const { url } = await rp.authorization({ latchkey_action: 'user-delete' });
    const page = await new CookieClient(server.url).follow(url);
    assert.match(page.body, /\/login"/);
    assert.ok(!page.body.includes('id="console-action"'), 'another app cannot put words on the page');

    const browser = new CookieClient(server.url);
    const start = await browser.request('/admin');
    const auth = new URL(start.headers.get('location')!);
    auth.searchParams.set('latchkey_action', 'transfer all the money');
    const login = await browser.follow(auth.toString());
    assert.match(login.body, /\/login"/);
    assert.ok(!login.body.includes('id="console-action"'));
  });

  it('shows the last administrator\'s refusal in words, and changes nothing', async () => {
    // Every administrator but one is made someone else; the one left tries to drop their own role.
    const admin = await consoleUser(server, ['admin'], 'roles-last');
    for (const other of await store().users.list()) {
      if (other.id !== admin.id && other.roles.includes('admin')) await store().users.changeRoles(other.id, { revoke: ['admin'] });
    }
    const browser = await signInConsole(server, admin);
    const form = await browser.follow(`/admin/users/${admin.id}/roles`);
    const res = await browser.submit(form, `/admin/users/${admin.id}/roles`, { 'role:admin': '' });
    assert.equal(res.status, 409);
    assert.match(res.body, /last active administrator/);
    assert.deepEqual((await store().users.findById(admin.id))!.roles, ['admin']);
  });
});
