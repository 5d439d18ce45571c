/**
 * The console's users section over HTTP, as an administrator and a help desk use it: search with filters
 * and keyset pages that neither repeat nor skip a row while users are added; an invitation by mail (no
 * password, no link shown to the administrator); a reset link; disable and enable; unlock; signing out one
 * session or all; roles; delete after typing the address; the help-desk reset with its record and its
 * refusals in words. Each action leaves its audit row with the administrator and their acr as the actor.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { accountKey } from '../../src/security/attempts.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addRecoveryCodes } from '../helpers/two-step.ts';
import { auditHead, consoleAuditRows, consoleUser, signInConsole, throughSignIn, type ConsolePerson } from './helpers.ts';

const MFA = 'urn:latchkey:acr:mfa';

describe('the console\'s users section', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let admin: ConsolePerson;
  let browser: CookieClient;
  const store = () => server.server.services.store;
  const knex = () => server.server.services.database.knex;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    admin = await consoleUser(server, ['admin'], 'users-admin');
    browser = await signInConsole(server, admin);
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  /** Submits the form with this exact action on `page` (plus `fields`), following to the page after. */
  const submit = (page: Page, action: string, fields: Record<string, string> = {}) => browser.submit(page, action, fields);

  /** The one row of `action` since `seq`: ok, by the administrator at mfa, on `target`. */
  async function okRow(seq: number, action: string, target: string | null) {
    const rows = (await consoleAuditRows(server, seq)).filter((r) => r.action === action);
    assert.equal(rows.length, 1, `one ${action} row: ${JSON.stringify(rows)}`);
    const row = rows[0]!;
    assert.deepEqual([row.result, row.actor_type, row.actor_id, row.actor_acr, row.target_id], ['ok', 'user', admin.id, MFA, target]);
    assert.equal(row.ip, '127.0.0.1');
    assert.match(row.request_id ?? '', /.{8,}/, 'the request id');
    return row;
  }

  const emailsOn = (page: Page) => [...page.body.matchAll(/<a class="email" href="\/admin\/users\/[^"]+"><strong>([^<]+)<\/strong>/g)].map((m) => m[1]!);

  it('searches by email or name with filters, a page at a time, stable while users are added', async () => {
    const made = [];
    for (let i = 0; i < 27; i++) made.push(await server.newUser('pager-'));
    await store().users.updateProfile(made[3]!.id, { name: 'Grace Hopper' });
    const first = await browser.follow('/admin/users?q=pager-');
    assert.equal(first.status, 200);
    const page1 = emailsOn(first);
    assert.equal(page1.length, 25, 'a page of 25');
    const next = /href="(\/admin\/users\?[^"]*cursor=[^"]+)" rel="next"/.exec(first.body)?.[1]?.replaceAll('&amp;', '&');
    assert.ok(next, 'a next page');
    for (let i = 0; i < 3; i++) await server.newUser('pager-'); // added meanwhile: newer, so on no later page
    const page2 = emailsOn(await browser.follow(next));
    assert.equal(page2.length, 2);
    assert.deepEqual(new Set([...page1, ...page2]), new Set(made.map((u) => u.email)), 'each user once, none skipped');

    assert.deepEqual(emailsOn(await browser.follow('/admin/users?q=grace+hop')), [made[3]!.email], 'by name');
    await store().users.setStatus(made[5]!.id, 'disabled');
    assert.deepEqual(emailsOn(await browser.follow('/admin/users?q=pager-&status=disabled')), [made[5]!.email]);
    await knex()('counters').insert({ key: accountKey(made[6]!.email), count: server.config.throttle.lockAfter, expires_at: knex().raw(`now() + interval '1 hour'`) });
    assert.deepEqual(emailsOn(await browser.follow('/admin/users?q=pager-&locked=yes')), [made[6]!.email]);
    assert.deepEqual(emailsOn(await browser.follow(`/admin/users?q=${encodeURIComponent(admin.email)}&twoStep=yes`)), [admin.email]);
    assert.deepEqual(emailsOn(await browser.follow(`/admin/users?q=${encodeURIComponent(admin.email)}&twoStep=no`)), []);

    const bad = await browser.follow('/admin/users?cursor=not-a-cursor');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /not a cursor this search gave/);
  });

  it('invites a user by mail: no password, no link on the page, an audit row; a second invitation too soon is refused in words', async () => {
    const form = await browser.follow('/admin/users/invite');
    assert.ok(!/type="password"/.test(form.body), 'an administrator never chooses a password');
    const since = mailbox.messages.length;
    const seq = await auditHead(server);
    const done = await submit(form, '/admin/users/invite', { email: 'invitee@example.com', name: 'Ada Lovelace' });
    const invited = await store().users.findByEmail('invitee@example.com');
    assert.ok(invited);
    assert.equal(invited.passwordHash, null);
    assert.equal(new URL(done.url).pathname, `/admin/users/${invited.id}`);
    assert.match(done.body, /An invitation went to invitee@example.com/);
    const mail = await mailbox.next('invitee@example.com', { since });
    const link = mailbox.link(mail);
    assert.match(link, /\/invite\?token=/);
    assert.ok(!done.body.includes(new URL(link).searchParams.get('token')!), 'the link is never shown');
    await okRow(seq, 'users.invite', invited.id);

    const again = await submit(await browser.follow('/admin/users/invite'), '/admin/users/invite', { email: 'invitee@example.com' });
    assert.equal(again.status, 429);
    assert.match(again.body, /less than a minute ago/);
    const invalid = await submit(await browser.follow('/admin/users/invite'), '/admin/users/invite', { email: 'not an address' });
    assert.equal(invalid.status, 400);
    assert.match(invalid.body, /id="email-error">&quot;not an address&quot; is not a valid email address/);
  });

  it('sends a reset link, disables (every session and token end) and enables, unlocks, signs out sessions', async () => {
    const user = await consoleUser(server, [], 'users-acted');
    // Two provider sessions of the user (a no-role console sign-in leaves one each).
    for (let i = 0; i < 2; i++) {
      const b = new CookieClient(server.url);
      await throughSignIn(b, server, user, await b.follow('/admin'));
    }
    assert.equal((await store().sessions.listForUser(user.id)).length, 2);
    const path = `/admin/users/${user.id}`;

    let seq = await auditHead(server);
    const since = mailbox.messages.length;
    let page = await submit(await browser.follow(path), `${path}/reset-link`);
    assert.match(page.body, /A password reset link went to/);
    assert.match(mailbox.link(await mailbox.next(user.email, { since })), /\/reset\/confirm\?token=/);
    await okRow(seq, 'users.reset_link', user.id);

    seq = await auditHead(server);
    page = await browser.follow(path);
    const one = findForm(page.body, `${path}/sessions/revoke`).hidden.session!;
    page = await submit(page, `${path}/sessions/revoke`, { session: one });
    assert.match(page.body, /The session ended/);
    assert.equal((await store().sessions.listForUser(user.id)).length, 1);
    await okRow(seq, 'users.revoke_sessions', user.id);

    seq = await auditHead(server);
    page = await browser.follow(path);
    const all = /<form method="post" action="[^"]+\/sessions\/revoke" id="revoke-all">[\s\S]*?name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
    page = await browser.follow(`${path}/sessions/revoke`, { form: { csrf: all } });
    assert.match(page.body, /Every session of .* ended/);
    assert.equal((await store().sessions.listForUser(user.id)).length, 0);
    await okRow(seq, 'users.revoke_sessions', user.id);

    seq = await auditHead(server);
    page = await submit(await browser.follow(path), `${path}/disable`);
    assert.match(page.body, /is disabled\. Every session and token/);
    assert.match(page.body, /id="status">Disabled/);
    assert.equal((await store().users.findById(user.id))!.status, 'disabled');
    await okRow(seq, 'users.disable', user.id);

    seq = await auditHead(server);
    page = await submit(page, `${path}/enable`);
    assert.equal((await store().users.findById(user.id))!.status, 'active');
    await okRow(seq, 'users.enable', user.id);

    await knex()('counters').insert({ key: accountKey(user.email), count: server.config.throttle.lockAfter, expires_at: knex().raw(`now() + interval '1 hour'`) });
    page = await browser.follow(path);
    assert.match(page.body, /id="locked"/);
    seq = await auditHead(server);
    page = await submit(page, `${path}/unlock`);
    assert.match(page.body, /is unlocked/);
    assert.ok(!/id="locked"/.test(page.body));
    await okRow(seq, 'users.unlock', user.id);
  });

  it('grants and removes a role after the step-up, with an audit row', async () => {
    const user = await server.newUser('users-role');
    const path = `/admin/users/${user.id}/roles`;
    const seq = await auditHead(server);
    let page = await submit(await browser.follow(path), path, { 'role:auditor': 'yes' });
    assert.match(page.body, /are now: Auditor/);
    assert.deepEqual((await store().users.findById(user.id))!.roles, ['auditor']);
    const row = await okRow(seq, 'users.roles', user.id);
    assert.deepEqual(row.after, { roles: ['auditor'] });
    page = await submit(await browser.follow(path), path, {});
    assert.deepEqual((await store().users.findById(user.id))!.roles, []);
  });

  it('deletes a user only when the address is typed back, keeping their trail', async () => {
    const user = await server.newUser('users-delete');
    const path = `/admin/users/${user.id}/delete`;
    const wrong = await submit(await browser.follow(path), path, { confirm: 'someone-else@example.com' });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body, /id="confirm-error">Type the user&#39;s email address exactly/);
    assert.ok(await store().users.findById(user.id));
    const seq = await auditHead(server);
    const done = await submit(await browser.follow(path), path, { confirm: user.email.toUpperCase() });
    assert.equal(new URL(done.url).pathname, '/admin/users');
    assert.match(done.body, /was deleted/);
    assert.equal(await store().users.findById(user.id), undefined);
    await okRow(seq, 'users.delete', user.id);
    assert.ok((await store().events.forUser(user.id)).some((e) => e.type === 'user.deleted'), 'the trail outlives the user');
  });

  it('resets a lost second factor as the help desk: the record is required, the methods go, a link is mailed', async () => {
    const helpdesk = await consoleUser(server, ['helpdesk'], 'users-hd');
    const desk = await signInConsole(server, helpdesk);
    const user = await consoleUser(server, [], 'users-lost');
    await addRecoveryCodes(store(), user.id, 10);
    const path = `/admin/users/${user.id}/two-step-reset`;

    const missing = await desk.submit(await desk.follow(path), path, { proof: '', ticket: 'T-77', all: 'yes' });
    assert.equal(missing.status, 400);
    assert.match(missing.body, /id="proof-error">say how you re-proved who the caller is/);
    assert.equal((await store().authenticators.listForUser(user.id)).length, 2, 'nothing removed');

    const since = mailbox.messages.length;
    const seq = await auditHead(server);
    const done = await desk.submit(await desk.follow(path), path, { proof: 'Video call, passport', ticket: 'T-77', all: 'yes' });
    assert.equal(new URL(done.url).pathname, `/admin/users/${user.id}`);
    assert.match(done.body, /was reset: 1 method removed/);
    assert.deepEqual(await store().authenticators.listForUser(user.id), [], 'the app and the recovery codes are gone');
    assert.match(mailbox.link(await mailbox.next(user.email, { since })), /\/recover-two-step\?token=/);
    const row = (await consoleAuditRows(server, seq)).find((r) => r.action === 'users.reset_two_step')!;
    assert.deepEqual([row.result, row.actor_id, row.actor_acr], ['ok', helpdesk.id, MFA]);
    assert.equal((row.after as { proof: string; ticket: string }).proof, 'Video call, passport');
    assert.equal((row.after as { proof: string; ticket: string }).ticket, 'T-77');
  });
});
