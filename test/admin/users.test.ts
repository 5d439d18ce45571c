/**
 * Administering users through the operations layer the CLI, the console and the REST API share: the roles
 * (admin, helpdesk, auditor) and their boundaries, the last administrator, disabling (every session and
 * token ends), unlocking, invitations (the invitee chooses the password through a single-use mailed link),
 * search with keyset pages, sessions, deletion. Refusals are denied rows in the audit log; every action on
 * a user is in that user's activity.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { verifyAudit } from '../../src/admin/operations/audit.ts';
import { addClient, listClients } from '../../src/admin/operations/clients.ts';
import { rotateKeys } from '../../src/admin/operations/keys.ts';
import { changeRoles, disableUser, enableUser, sendResetLink, unlockUser } from '../../src/admin/operations/user-access.ts';
import { listSessions, revokeSessions } from '../../src/admin/operations/user-sessions.ts';
import { addUser, deleteUser, inviteUser, listUsers, searchUsers } from '../../src/admin/operations/users.ts';
import { createRenderer } from '../../src/http/render.ts';
import { accountKey } from '../../src/security/attempts.ts';
import type { Role } from '../../src/store/users.ts';
import { withLanguage } from '../../src/i18n.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { decodeJwt } from '../helpers/jwt.ts';
import { rejectsWith, sleep } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const cli: Actor = { via: 'cli', requestId: 'req-users-test' };
const consoleActor = (userId: string, roles: Role[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.20', userAgent: 'Console browser' });

/** The refusal a promise ends in (fails the test when it is accepted). */
const refusal = (p: Promise<unknown>) => p.then(() => assert.fail('accepted'), (err: unknown) => {
  assert.ok(err instanceof OperationError, String(err));
  return err;
});

describe('administering users', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let receiver: LogoutReceiver;
  let rp: RelyingParty;
  let ledger: RelyingParty;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  /** A minute passes for the link mails to this user (their one-a-minute counters end). */
  const aMinuteLater = (userId: string) => knex()('counters').where('key', 'like', `mail:%:${userId}`).delete();
  let seen = 0;
  /** The audit rows written since the last call. */
  async function newRows(): Promise<{ action: string; result: string; actor_id: string | null; target_id: string | null; reason: string | null }[]> {
    const rows = await knex()('audit_log').where('seq', '>', seen).orderBy('seq');
    if (rows.length) seen = Number(rows.at(-1).seq);
    return rows;
  }

  async function signInAttempt(email: string, password: string): Promise<Page & { stoppedAt?: string }> {
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization()).url);
    return browser.submit(login, '/login', { email, password });
  }
  const signedIn = (p: Page & { stoppedAt?: string }) => !!p.stoppedAt || /\/confirm"/.test(p.body);
  /** The sign-in page's answer, without what differs per request (tokens, interaction ids, the address typed). */
  const answerOf = (p: Page, email: string) => ({
    status: p.status,
    body: p.body.replaceAll(email, 'EMAIL').replace(/[A-Za-z0-9_-]{20,}/g, 'X'),
  });
  async function silent(browser: CookieClient, relyingParty = rp) {
    const page = await browser.follow((await relyingParty.authorization({ prompt: 'none' })).url);
    assert.ok(page.stoppedAt, `prompt=none answers at the redirect URI, got ${page.status}`);
    return new URL(page.stoppedAt).searchParams;
  }
  async function withRoles(prefix: string, roles: string[]) {
    const u = await server.newUser(prefix);
    await knex()('users').where({ id: u.id }).update({ roles: JSON.stringify(roles) });
    return u;
  }

  before(async () => {
    mailbox = await startMailBox();
    receiver = await startLogoutReceiver();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url }, backchannelLogout: { allowPrivateNetwork: true } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: ['http://localhost:9999/cb'] }));
    ledger = await RelyingParty.create(server.url, await server.addClient({
      name: 'Ledger', redirectUris: ['http://localhost:9998/cb'], backchannelLogoutUri: receiver.url,
    }));
    await newRows();
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
    await receiver.close();
  });

  describe('roles', () => {
    it('a helpdesk account acting on an administrator, or on another helpdesk account, is denied, and the denial is audited', async () => {
      const desk = await withRoles('desk', ['helpdesk']);
      const otherDesk = await withRoles('desk', ['helpdesk']);
      const boss = await withRoles('boss', ['admin']);
      const plain = await server.newUser('plain');
      const helpdesk = consoleActor(desk.id, ['helpdesk']);
      await newRows();
      for (const [target, roles] of [[boss, 'admin'], [otherDesk, 'helpdesk']] as const) {
        const refusals = await Promise.all([disableUser(services(), helpdesk, target.id), unlockUser(services(), helpdesk, target.email),
          sendResetLink(services(), helpdesk, target.id), revokeSessions(services(), helpdesk, target.id), deleteUser(services(), helpdesk, target.id),
          listSessions(services(), helpdesk, target.id)].map(refusal));
        for (const err of refusals) {
          assert.deepEqual([err.status, err.code], [403, 'permission.denied']);
          assert.match(err.message, new RegExp(`holds a role \\(${roles}\\)`));
        }
      }
      const rows = await newRows();
      assert.equal(rows.length, 12);
      assert.ok(rows.every((r) => r.result === 'denied' && r.actor_id === desk.id && r.reason?.startsWith('permission.denied: ')), JSON.stringify(rows));
      assert.deepEqual(new Set(rows.map((r) => r.target_id)), new Set([boss.id, otherDesk.id]));
      assert.equal((await services().store.users.findById(boss.id))?.status, 'active', 'nothing changed');

      // On a user without a role, the helpdesk may.
      assert.equal((await disableUser(services(), helpdesk, plain.id)).status, 'disabled');
      assert.equal((await enableUser(services(), helpdesk, plain.email)).status, 'active');
      assert.deepEqual((await newRows()).map((r) => [r.action, r.result]), [['users.disable', 'ok'], ['users.enable', 'ok']]);
      // Users only: no clients, keys or audit log.
      const others = await Promise.all([listClients(services(), helpdesk), rotateKeys(services(), helpdesk), verifyAudit(services(), helpdesk)].map(refusal));
      assert.deepEqual(others.map((err) => err.status), [403, 403, 403]);
    });

    it('an auditor reads (users, clients, the audit log) and changes nothing', async () => {
      const auditor = consoleActor((await withRoles('auditor', ['auditor'])).id, ['auditor']);
      const plain = await server.newUser('plain');
      assert.ok((await listUsers(services(), auditor)).some((u) => u.id === plain.id));
      assert.ok((await searchUsers(services(), auditor, { query: plain.email })).items.some((u) => u.id === plain.id));
      assert.ok(Array.isArray(await listClients(services(), auditor)));
      assert.equal((await verifyAudit(services(), auditor)).ok, true);
      await newRows();
      const refusals = await Promise.all([disableUser(services(), auditor, plain.id), unlockUser(services(), auditor, plain.id), deleteUser(services(), auditor, plain.id),
        inviteUser(services(), auditor, { email: 'by-auditor@example.com' }), addUser(services(), auditor, { email: 'by-auditor2@example.com', password: 'a long enough password' }),
        addClient(services(), auditor, { name: 'No', redirectUris: ['https://no.example.com/cb'] }), rotateKeys(services(), auditor),
        changeRoles(services(), auditor, plain.id, { grant: ['auditor'] })].map(refusal));
      for (const err of refusals) {
        assert.deepEqual([err.status, err.code], [403, 'permission.denied']);
      }
      const rows = await newRows();
      assert.equal(rows.length, 8);
      assert.ok(rows.every((r) => r.result === 'denied'));
      assert.equal(await services().store.users.findByEmail('by-auditor@example.com'), undefined);
    });

    it('only an administrator grants roles: a helpdesk account cannot, not even through an invitation or a new user', async () => {
      const desk = consoleActor((await withRoles('desk', ['helpdesk'])).id, ['helpdesk']);
      const plain = await server.newUser('plain');
      assert.equal((await refusal(changeRoles(services(), desk, plain.id, { grant: ['helpdesk'] }))).status, 403);
      assert.equal((await refusal(inviteUser(services(), desk, { email: 'desk-invite@example.com', roles: ['admin'] }))).status, 403);
      assert.equal((await refusal(addUser(services(), desk, { email: 'desk-admin@example.com', password: 'a long enough password', admin: true }))).status, 403);
      assert.deepEqual((await services().store.users.findById(plain.id))?.roles, []);

      const admin = consoleActor((await withRoles('boss', ['admin'])).id, ['admin']);
      assert.deepEqual((await changeRoles(services(), admin, plain.id, { grant: ['helpdesk', 'auditor'] })).roles, ['helpdesk', 'auditor']);
      assert.deepEqual((await changeRoles(services(), cli, plain.email, { revoke: ['auditor'] })).roles, ['helpdesk']);
      const bad = await refusal(changeRoles(services(), cli, plain.id, { grant: ['root'] }));
      assert.deepEqual([bad.status, bad.field], [400, 'grant']);
      const [event] = (await services().store.events.forUser(plain.id)).filter((e) => e.type === 'user.roles_changed');
      assert.deepEqual(event?.details, { via: 'cli', before: ['helpdesk', 'auditor'], roles: ['helpdesk'] });
    });

    it('the last active administrator cannot lose the role, be disabled or be deleted, also when two demotions race', async () => {
      const a = await server.newUser('last');
      const b = await server.newUser('last');
      // Only these two are administrators from here on.
      await knex()('users').whereRaw(`roles @> '["admin"]'::jsonb`).update({ roles: JSON.stringify(['auditor']) });
      await knex()('users').whereIn('id', [a.id, b.id]).update({ roles: JSON.stringify(['admin']) });
      const admins = async () => (await knex()('users').whereRaw(`roles @> '["admin"]'::jsonb`).andWhere({ status: 'active' }).select('id')).map((r: { id: string }) => r.id);

      for (let round = 0; round < 5; round++) {
        const results: PromiseSettledResult<unknown>[] = await Promise.allSettled([
          changeRoles(services(), cli, a.id, { revoke: ['admin'] }),
          changeRoles(services(), cli, b.id, { revoke: ['admin'] }),
        ]);
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one demotion goes through`);
        const refused = results.find((r) => r.status === 'rejected');
        assert.equal((refused as PromiseRejectedResult).reason.code, 'user.last_admin');
        assert.equal((await admins()).length, 1, 'one administrator is left');
        await changeRoles(services(), cli, (await admins())[0] === a.id ? b.id : a.id, { grant: ['admin'] });
      }
      // Disabling and deleting race too: one of the two stays.
      const raced = await Promise.allSettled([disableUser(services(), cli, a.id), deleteUser(services(), cli, b.id)]);
      assert.equal(raced.filter((r) => r.status === 'fulfilled').length, 1);
      assert.equal((await admins()).length, 1);
      const last = (await admins())[0]!;
      const refusals = await Promise.all([changeRoles(services(), cli, last, { revoke: ['admin'] }), disableUser(services(), cli, last), deleteUser(services(), cli, last)].map(refusal));
      for (const err of refusals) {
        assert.deepEqual([err.status, err.code], [409, 'user.last_admin']);
      }
      assert.deepEqual(await admins(), [last]);

      // An invitee who never chose a password cannot act as an administrator yet: the last one still may not go.
      await inviteUser(services(), cli, { email: 'invited-admin@example.com', roles: ['admin'] });
      assert.equal((await refusal(changeRoles(services(), cli, last, { revoke: ['admin'] }))).code, 'user.last_admin');
      // A pending invitation keeps its roles: a new link with other roles is refused, with the same ones it is sent.
      const other = await refusal(inviteUser(services(), cli, { email: 'invited-admin@example.com', roles: ['auditor'] }));
      assert.deepEqual([other.status, other.code], [409, 'user.invite_roles']);
      const pending = await inviteUser(services(), cli, { email: 'invited-admin@example.com', roles: ['admin'] }).catch((err: unknown) => err);
      assert.equal((pending as OperationError).code, 'user.mail_too_soon', 'one link mail a minute');
      await aMinuteLater((await services().store.users.findByEmail('invited-admin@example.com'))!.id);
      assert.deepEqual((await inviteUser(services(), cli, { email: 'invited-admin@example.com', roles: ['admin'] })).roles, ['admin']);
    });

    it('tells no one without the right whether an account exists: the refusal comes before the lookup', async () => {
      const nobody = consoleActor((await server.newUser('norole')).id, []);
      const plain = await server.newUser('plain');
      for (const ref of [plain.email, 'no-such-user@example.com', plain.id, '00000000-0000-4000-8000-000000000000']) {
        const answers = await Promise.all([disableUser(services(), nobody, ref), deleteUser(services(), nobody, ref), unlockUser(services(), nobody, ref),
          listSessions(services(), nobody, ref), revokeSessions(services(), nobody, ref)].map(refusal));
        for (const err of answers) assert.deepEqual([err.status, err.code], [403, 'permission.denied'], ref);
      }
    });
  });

  describe('disable and enable', () => {
    it('disabling ends the signed-in sessions, revokes the refresh token and tells the apps; sign-in then answers as for a wrong password; enabling restores', async () => {
      const hugo = await server.newUser('hugo');
      const other = await server.newUser('hugx');
      const deskId = (await withRoles('desk', ['helpdesk'])).id;
      const desk = consoleActor(deskId, ['helpdesk']);
      const browser = new CookieClient(server.url);
      const { tokens } = await rp.signIn(browser, hugo, { scope: 'openid email offline_access' });
      assert.ok(tokens.refresh_token);
      await ledger.signIn(browser, hugo);
      assert.ok((await silent(browser, ledger)).get('code'), 'signed in before');
      const logouts = receiver.tokens.length;

      const done = await disableUser(services(), desk, hugo.id);
      assert.deepEqual([done.status, done.sessionsEnded], ['disabled', 1]);
      assert.equal((await silent(browser, ledger)).get('error'), 'login_required');
      assert.equal((await silent(browser)).get('error'), 'login_required');
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token is revoked');
      assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is revoked');
      for (let i = 0; i < 50 && receiver.tokens.length === logouts; i++) await sleep(100);
      assert.equal(decodeJwt(receiver.tokens.at(-1)!).payload.sub, hugo.id, 'back-channel logout');

      // The right password of a disabled account gets exactly the wrong password's answer.
      const disabled = await signInAttempt(hugo.email, hugo.password);
      const wrong = await signInAttempt(other.email, 'not the password at all');
      assert.equal(signedIn(disabled), false);
      assert.deepEqual(answerOf(disabled, hugo.email), answerOf(wrong, other.email));
      assert.equal(disabled.status, 401);

      const [event] = (await services().store.events.forUser(hugo.id)).filter((e) => e.type === 'user.disabled');
      assert.deepEqual([event?.ip, event?.details], ['198.51.100.20', { via: 'console', by: deskId, sessionsEnded: 1 }]);

      await enableUser(services(), desk, hugo.id);
      assert.ok(signedIn(await signInAttempt(hugo.email, hugo.password)), 'enabled again, the password works');
    });
  });

  describe('unlock', () => {
    it('clears the lock after too many failures: the search finds the locked user, and sign-in works again', async () => {
      const lena = await server.newUser('lena');
      const { lockAfter } = server.config.throttle;
      await knex()('counters').insert({ key: accountKey(lena.email), count: lockAfter, expires_at: knex().raw(`now() + interval '1 hour'`) });
      const locked = await signInAttempt(lena.email, lena.password);
      assert.equal(locked.status, 429);
      assert.match(locked.body, /Too many failed attempts/);
      assert.deepEqual((await searchUsers(services(), cli, { query: 'lena', locked: true })).items.map((u) => u.id), [lena.id]);

      assert.equal((await unlockUser(services(), cli, lena.email)).wasLocked, true);
      assert.deepEqual((await searchUsers(services(), cli, { query: 'lena', locked: true })).items, []);
      assert.deepEqual((await searchUsers(services(), cli, { query: 'lena', locked: 'no' })).items.map((u) => u.id), [lena.id]);
      assert.ok(signedIn(await signInAttempt(lena.email, lena.password)));
      assert.ok((await services().store.events.forUser(lena.id)).some((e) => e.type === 'user.unlocked' && e.details.wasLocked === true));
    });
  });

  describe('invitations', () => {
    it('mails a single-use link to a page where the invitee chooses the password; the administrator never sees it', async () => {
      const since = mailbox.messages.length;
      const invited = await inviteUser(services(), cli, { email: 'Ivy@example.com', name: 'Ivy' });
      const mail = await mailbox.next('Ivy@example.com', { since });
      assert.match(mail.subject, /You are invited to Latchkey/);
      const link = mailbox.link(mail);
      assert.match(link, new RegExp(`^${server.url}/invite\\?token=[A-Za-z0-9_-]{43}$`));
      const token = new URL(link).searchParams.get('token')!;
      assert.ok(!JSON.stringify(invited).includes(token), 'the result never holds the link');
      const audit = JSON.stringify(await knex()('audit_log').where({ action: 'users.invite' }));
      assert.ok(!audit.includes(token), 'nor does the audit log');
      assert.ok(!server.logText().includes(token), 'nor the server log');
      assert.equal((await knex()('one_time_codes').where({ purpose: 'invite', user_id: invited.id }).first()).code_hash.includes(token), false, 'stored hashed');
      assert.equal((await services().store.users.findById(invited.id))?.passwordHash, null, 'no password until the invitee chooses one');
      assert.ok(!signedIn(await signInAttempt('ivy@example.com', 'anything at all here')));

      const browser = new CookieClient(server.url);
      const form = await browser.follow(link);
      assert.equal(form.status, 200);
      assert.match(form.body, /Choose your password/);
      assert.match(form.body, /invited to the account Ivy@example.com/);
      const weak = await browser.submit(form, '/invite', { password: 'password1' });
      assert.equal(weak.status, 400, 'a refused password does not cost the link');
      const done = await browser.submit(weak, '/invite', { password: 'ivy chose her own password' });
      assert.equal(done.status, 200);
      assert.match(done.body, /Your account is ready/);
      const again = await new CookieClient(server.url).follow(link);
      assert.equal(again.status, 410, 'the link works once');
      const replay = await browser.submit(form, '/invite', { password: 'mallory sets another one' });
      assert.equal(replay.status, 410);
      assert.ok(signedIn(await signInAttempt('ivy@example.com', 'ivy chose her own password')));
      const user = await services().store.users.findById(invited.id);
      assert.ok(user?.emailVerifiedAt, 'the address is confirmed');
      assert.deepEqual((await services().store.events.forUser(invited.id)).map((e) => e.type).filter((t) => t.startsWith('user.')).reverse(), ['user.invited', 'user.invite_accepted']);
      // An invitation once accepted is an account: inviting the address again is refused.
      assert.equal((await refusal(inviteUser(services(), cli, { email: 'ivy@example.com' }))).code, 'user.exists');
    });

    it('expires after 24 hours, and a newer invitation kills the older link', async () => {
      const since = mailbox.messages.length;
      const first = await inviteUser(services(), cli, { email: 'jude@example.com' });
      const oldLink = mailbox.link(await mailbox.next('jude@example.com', { since }));
      const row = await knex()('one_time_codes').where({ purpose: 'invite', user_id: first.id }).whereNull('used_at').first();
      const hours = (row.expires_at.getTime() - row.created_at.getTime()) / 3600_000;
      assert.ok(Math.abs(hours - 24) < 0.01, `24 hours, got ${hours}`);

      const since2 = mailbox.messages.length;
      await aMinuteLater(first.id);
      await inviteUser(services(), cli, { email: 'jude@example.com' });
      const newLink = mailbox.link(await mailbox.next('jude@example.com', { since: since2 }));
      assert.equal((await new CookieClient(server.url).follow(oldLink)).status, 410, 'the older link died');
      const form = await new CookieClient(server.url).follow(newLink);
      assert.equal(form.status, 200);
      await knex()('one_time_codes').where({ purpose: 'invite', user_id: first.id }).whereNull('used_at')
        .update({ expires_at: knex().raw(`now() - interval '1 second'`) });
      assert.equal((await new CookieClient(server.url).follow(newLink)).status, 410, 'expired');
      assert.match((await new CookieClient(server.url).follow(newLink)).body, /This invitation no longer works/);
    });

    it('speaks German to an invitee whose language is German', async () => {
      assert.equal(withLanguage('de', () => createRenderer(server.config).t('invite.title')), 'Passwort festlegen');
      assert.equal(withLanguage('de', () => createRenderer(server.config).t('account.activity.types.user.disabled')), 'Konto von der Administration deaktiviert: überall abgemeldet');
    });
  });

  describe('search', () => {
    it('filters by text, status and two-step, and pages by cursor without repeating or skipping a row while users are added', async () => {
      const made = [];
      for (let i = 0; i < 7; i++) made.push(await server.newUser('pager'));
      const page1 = await searchUsers(services(), cli, { query: 'PAGER', limit: 3 });
      assert.equal(page1.items.length, 3);
      assert.ok(page1.nextCursor);
      // Rows added between pages land before the first page: later pages are not shifted.
      for (let i = 0; i < 3; i++) await server.newUser('pager');
      const page2 = await searchUsers(services(), cli, { query: 'pager', limit: 3, cursor: page1.nextCursor! });
      const page3 = await searchUsers(services(), cli, { query: 'pager', limit: 3, cursor: page2.nextCursor! });
      assert.equal(page3.nextCursor, null);
      const ids = [...page1.items, ...page2.items, ...page3.items].map((u) => u.id);
      assert.deepEqual(ids, made.map((u) => u.id).reverse(), 'newest first, each once');

      await disableUser(services(), cli, made[2]!.id);
      assert.deepEqual((await searchUsers(services(), cli, { query: 'pager', status: 'disabled' })).items.map((u) => u.id), [made[2]!.id]);
      await knex()('authenticators').insert({ id: 'auth-pager-totp', user_id: made[4]!.id, kind: 'totp', label: 'Phone app' });
      await knex()('authenticators').insert({ id: 'auth-pager-sq', user_id: made[5]!.id, kind: 'security-question', label: 'Question' });
      assert.deepEqual((await searchUsers(services(), cli, { query: 'pager', twoStep: true })).items.map((u) => u.id), [made[4]!.id], 'a security question is not two-step');
      assert.equal((await searchUsers(services(), cli, { query: 'pager', twoStep: 'no' })).items.length, 9);
      // Searching by name.
      await knex()('users').where({ id: made[6]!.id }).update({ name: 'Zoë Pagerson' });
      assert.deepEqual((await searchUsers(services(), cli, { query: 'zoë' })).items.map((u) => u.id), [made[6]!.id]);

      for (const [input, field] of [[{ cursor: 'bm90IGEgY3Vyc29y' }, 'cursor'], [{ limit: 0 }, 'limit'], [{ limit: '1000' }, 'limit'], [{ status: 'gone' }, 'status'], [{ twoStep: 'maybe' }, 'two-step']] as const) {
        const err = await refusal(searchUsers(services(), cli, input));
        assert.deepEqual([err.status, err.field], [400, field]);
      }
    });
  });

  describe('sessions and deletion', () => {
    it('lists a user\'s sessions and ends one; ending all revokes every token', async () => {
      const sam = await server.newUser('sam');
      const [one, two] = [new CookieClient(server.url), new CookieClient(server.url)];
      await rp.signIn(one, sam);
      const { tokens } = await rp.signIn(two, sam, { scope: 'openid email offline_access' });
      const sessions = await listSessions(services(), cli, sam.email);
      assert.equal(sessions.length, 2);
      const unknown = await refusal(revokeSessions(services(), cli, sam.id, 'no-such-session'));
      assert.deepEqual([unknown.status, unknown.field], [404, 'session']);

      assert.deepEqual(await revokeSessions(services(), cli, sam.id, sessions[0]!.id), { sessionsEnded: 1 });
      assert.equal((await listSessions(services(), cli, sam.id)).length, 1);
      assert.deepEqual(await revokeSessions(services(), cli, sam.id), { sessionsEnded: 1 });
      for (const b of [one, two]) assert.equal((await silent(b)).get('error'), 'login_required');
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant');
      const types = (await services().store.events.forUser(sam.id)).map((e) => e.type);
      assert.ok(types.includes('user.session_revoked') && types.includes('user.sessions_revoked'));
    });

    it('deletes a user: their tokens die, their security events and audit rows stay', async () => {
      const dora = await server.newUser('dora');
      const { tokens } = await rp.signIn(new CookieClient(server.url), dora, { scope: 'openid email offline_access' });
      await deleteUser(services(), cli, dora.email);
      assert.equal(await services().store.users.findById(dora.id), undefined);
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant');
      assert.ok((await services().store.events.forUser(dora.id)).some((e) => e.type === 'user.deleted'), 'the trail outlives the user');
      assert.ok(await knex()('audit_log').where({ action: 'users.delete', target_id: dora.id, result: 'ok' }).first());
      const gone = await refusal(deleteUser(services(), cli, dora.id));
      assert.equal(gone.status, 404);
      assert.equal((await verifyAudit(services(), cli)).ok, true);
    });

    it('sends one link mail a minute per account, also to a burst of calls from administrators: the rest are refused and audited', async () => {
      const rosa = await server.newUser('burst');
      const since = mailbox.messages.length;
      await newRows();
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => sendResetLink(services(), cli, rosa.id)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one link is sent');
      for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
        assert.deepEqual([r.reason.status, r.reason.code], [429, 'user.mail_too_soon']);
      }
      await sleep(300);
      assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(rosa.email)).length, 1, 'one mail');
      const rows = await newRows();
      assert.deepEqual(rows.map((r) => r.result).sort(), ['denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'denied', 'ok']);
      assert.equal(await knex()('one_time_codes').where({ purpose: 'password_reset', user_id: rosa.id }).count<{ n: number }[]>('id as n').then(([r]) => Number(r!.n)), 1, 'one link issued');
      // Invitations keep the same pace: a pending invitee gets one link a minute.
      const sinceInvite = mailbox.messages.length;
      const invites = await Promise.allSettled(Array.from({ length: 6 }, () => inviteUser(services(), cli, { email: 'burst-invitee@example.com' })));
      assert.ok(invites.filter((r) => r.status === 'fulfilled').length >= 1);
      await sleep(300);
      assert.equal(mailbox.messages.slice(sinceInvite).filter((m) => m.to.includes('burst-invitee@example.com')).length, 1, 'one invitation mail');
    });

    it('a reset link from an administrator is the reset flow\'s own, mailed to the user', async () => {
      const rita = await server.newUser('rita');
      const since = mailbox.messages.length;
      await sendResetLink(services(), cli, rita.id);
      const link = mailbox.link(await mailbox.next(rita.email, { since }));
      assert.match(link, new RegExp(`^${server.url}/reset/confirm\\?token=`));
      assert.equal((await new CookieClient(server.url).follow(link)).status, 200);
      assert.ok((await services().store.events.forUser(rita.id)).some((e) => e.type === 'password_reset.link_sent_by_admin'));
    });
  });
});
