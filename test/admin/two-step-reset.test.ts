/**
 * The help-desk reset of a lost second factor (issue 13, part 4): refused on any account that holds a
 * console role and without a proof and a ticket (each refusal audited as denied); the reset ends every
 * session and token, removes the lost methods, mails a single-use link to the confirmed address and tells
 * every address of the account; the link asks for the password (counted, a few tries per link, spent
 * only by the right one), then a new method and new recovery codes, after which a sign-in at mfa works
 * with the new method.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { resetTwoStep } from '../../src/admin/operations/two-step-reset.ts';
import { runCommand } from '../../src/admin/commands.ts';
import { LINK_PASSWORD_TRIES } from '../../src/mail-flows/recover-two-step.ts';
import { createRenderer } from '../../src/http/render.ts';
import type { Role } from '../../src/store/users.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { rejectsWith } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import {
  addQuestion, addRecoveryCodes, addSmsPhone, addTotp, awaitFreshStep, base32Decode, failureCount, nowSeconds, recoveryCodesOn, throughToApp, totpCode,
} from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const cli: Actor = { via: 'cli', requestId: 'req-two-step-reset' };
const consoleActor = (userId: string, roles: Role[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.30', userAgent: 'Console browser' });
const PROOF = 'video call + ID document checked';
const TICKET = 'HD-4711';

const refusal = (p: Promise<unknown>) => p.then(() => assert.fail('accepted'), (err: unknown) => {
  assert.ok(err instanceof OperationError, String(err));
  return err;
});

describe('the help-desk reset of a lost second factor', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;
  const services = () => server.server.services;
  const store = () => services().store;
  const knex = () => services().database.knex;
  let desk: Actor;

  async function withRoles(prefix: string, roles: string[]) {
    const u = await server.newUser(prefix);
    await knex()('users').where({ id: u.id }).update({ roles: JSON.stringify(roles) });
    return u;
  }
  /** A user with a security question, an authenticator app and recovery codes. */
  async function withApp(prefix: string) {
    const user = await server.newUser(prefix);
    await addQuestion(store(), (s) => services().hasher.hash(s), user.id);
    const app = await addTotp(store(), user.id, 'Old phone');
    await addRecoveryCodes(store(), user.id);
    return { ...user, app };
  }
  const kinds = async (userId: string) => (await store().authenticators.listForUser(userId)).map((a) => a.kind).sort();
  const rowsOf = (userId: string) => knex()('audit_log').where({ action: 'users.reset_two_step', target_id: userId }).orderBy('seq');
  const linkOf = async (email: string, since: number) => {
    const mail = await mailbox.next(email, { since });
    assert.match(mail.subject, /two-step verification was reset/);
    return mailbox.link(mail);
  };
  const reset = (ref: string, actor = desk) => resetTwoStep(services(), actor, ref, { methods: 'all', proof: PROOF, ticket: TICKET });

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: ['http://localhost:9999/cb'] }));
    const deskUser = await withRoles('desk', ['helpdesk']);
    desk = consoleActor(deskUser.id, ['helpdesk']);
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  describe('refusals', () => {
    it('refuses a helpdesk account on an administrator, and anyone (the CLI too) on an account that holds a role: audited as denied, nothing changes', async () => {
      const since = mailbox.messages.length;
      const boss = await withRoles('boss', ['admin']);
      const auditor = await withRoles('reader', ['auditor']);
      const colleague = await withRoles('desk', ['helpdesk']);
      for (const u of [boss, auditor, colleague]) await addTotp(store(), u.id);

      const byDesk = await refusal(reset(boss.id));
      assert.deepEqual([byDesk.status, byDesk.code], [403, 'permission.denied']);
      for (const u of [boss, auditor, colleague]) {
        const err = await refusal(reset(u.id, cli));
        assert.deepEqual([err.status, err.code], [403, 'two_step_reset.role_holder'], u.email);
        assert.deepEqual(await kinds(u.id), ['totp'], 'the method stays');
      }
      assert.deepEqual((await rowsOf(boss.id)).map((r) => [r.result, r.actor_type]), [['denied', 'user'], ['denied', 'cli']]);
      assert.equal((await rowsOf(auditor.id)).length, 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(mailbox.messages.slice(since).length, 0, 'no mail went anywhere');
    });

    it('refuses without a proof or a ticket, and for an address the owner never confirmed: audited as denied, nothing changes', async () => {
      const user = await withApp('noproof');
      for (const [input, code] of [
        [{ proof: '', ticket: TICKET }, 'two_step_reset.proof_missing'],
        [{ proof: '   ', ticket: TICKET }, 'two_step_reset.proof_missing'],
        [{ proof: PROOF, ticket: '' }, 'two_step_reset.ticket_missing'],
        [{ proof: 'caller\u202Egnp.exe', ticket: TICKET }, 'two_step_reset.proof_invalid'],
      ] as const) {
        const err = await refusal(resetTwoStep(services(), desk, user.id, { methods: 'all', ...input }));
        assert.deepEqual([err.status, err.code], [400, code]);
      }
      await knex()('users').where({ id: user.id }).update({ email_verified_at: null });
      const unconfirmed = await refusal(reset(user.id));
      assert.deepEqual([unconfirmed.status, unconfirmed.code], [409, 'two_step_reset.email_unverified']);
      assert.deepEqual(await kinds(user.id), ['recovery-code', 'security-question', 'totp']);
      assert.equal(await store().codes.countLive('two_step_reset', user.id), 0, 'no link was made');
      assert.deepEqual((await rowsOf(user.id)).map((r) => r.result), ['denied', 'denied', 'denied', 'denied', 'denied']);
    });

    it('the CLI needs --proof and --ticket, and --method or --all', async () => {
      const user = await withApp('clineeds');
      const io = { stdin: async () => '' };
      const noProof = await runCommand(['users', 'reset-two-step', user.email, '--ticket', TICKET, '--all'], services(), io);
      assert.equal(noProof.code, 2);
      assert.match(noProof.stderr, /--proof is required/);
      const noMethod = await runCommand(['users', 'reset-two-step', user.email, '--proof', PROOF, '--ticket', TICKET], services(), io);
      assert.equal(noMethod.code, 2);
      assert.match(noMethod.stderr, /--method: name the methods to remove, or all of them/);
      assert.deepEqual(await kinds(user.id), ['recovery-code', 'security-question', 'totp']);
    });
  });

  describe('the reset', () => {
    it('removes only the named method, keeps the recovery codes while another possession method remains, and never removes the security question', async () => {
      const user = await withApp('named');
      const phone = await addSmsPhone(store(), user.id);
      const question = (await store().authenticators.listForUser(user.id)).find((a) => a.kind === 'security-question')!;
      const kept = await refusal(resetTwoStep(services(), desk, user.id, { methods: [question.id], proof: PROOF, ticket: TICKET }));
      assert.deepEqual([kept.status, kept.code], [400, 'two_step_reset.method_kept']);
      const done = await resetTwoStep(services(), desk, user.id, { methods: [user.app.id], proof: PROOF, ticket: TICKET });
      assert.deepEqual(done.removed.map((m) => m.id), [user.app.id]);
      assert.deepEqual(await kinds(user.id), ['recovery-code', 'security-question', 'sms']);
      assert.equal(await store().codes.countLive('recovery_code', user.id), 10, 'the codes back up the phone still');
      assert.ok(phone.id);
    });

    it('tells every address of the account: the one it has (with the link) and one it changed from lately (a notice, no link); the CLI prints who', async () => {
      const user = await withApp('moved');
      await store().events.insert({ userId: user.id, type: 'email.changed', ip: null, userAgent: null, details: { from: 'before-moved@example.com', to: user.email } });
      const since = mailbox.messages.length;
      const out = await runCommand(['users', 'reset-two-step', user.email, '--proof', PROOF, '--ticket', TICKET, '--all'], services(), { stdin: async () => '' });
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /removed totp "Old phone"/);
      assert.match(out.stdout, new RegExp(`told: ${user.email}, before-moved@example.com`));
      assert.match(await linkOf(user.email, since), /\/recover-two-step\?token=/);
      const notice = await mailbox.next('before-moved@example.com', { since });
      assert.match(notice.subject, /two-step verification of a Latchkey account was reset/);
      assert.match(notice.text, new RegExp(user.email));
      assert.doesNotMatch(notice.text, /token=/, 'the former address gets no link');
    });

    it('keeps no secret in the audit row or the activity: a pasted link in the proof is redacted', async () => {
      const user = await withApp('pasted');
      await resetTwoStep(services(), cli, user.id, { methods: 'all', proof: `checked ID, see ${server.url}/reset/confirm?token=${'x'.repeat(43)}`, ticket: TICKET });
      const [row] = await rowsOf(user.id);
      assert.deepEqual([row.after.proof, row.after.ticket], ['[redacted]', TICKET]);
      const event = (await store().events.forUser(user.id)).find((e) => e.type === 'user.two_step_reset');
      assert.equal(event?.details.proof, '[redacted]');
    });

    it('one link mail a minute per account: a second reset at once is refused (429, audited)', async () => {
      const user = await withApp('twice');
      await reset(user.id);
      const again = await refusal(reset(user.id));
      assert.deepEqual([again.status, again.code], [429, 'user.mail_too_soon']);
      assert.deepEqual((await rowsOf(user.id)).map((r) => r.result), ['ok', 'denied']);
    });
  });

  describe('the recovery, end to end', () => {
    it('until the mailed link made a new method, the password alone completes no sign-in, even with no second step left to ask for', async () => {
      // No security question: once the app is removed, nothing but the password would be asked.
      const user = await server.newUser('bypass');
      await addTotp(store(), user.id, 'Old phone');
      await addRecoveryCodes(store(), user.id);
      await reset(user.email);
      assert.deepEqual(await kinds(user.id), []);
      // Someone with the phished password, who never sees the mailed link.
      const attacker = new CookieClient(server.url);
      const login = await attacker.follow((await rp.authorization({ scope: 'openid email' })).url);
      const page = await attacker.submit(login, '/login', user);
      assert.equal(page.status, 403, `no sign-in completes: ${page.status} at ${page.url}`);
      assert.equal(page.stoppedAt, undefined, 'nothing goes back to the app');
      assert.match(page.body, /Your help desk reset your two-step verification/);
      const account = await attacker.follow('/account/security');
      assert.ok(!account.url.includes('/account/security') || account.status !== 200, 'no account page');
      assert.deepEqual(await kinds(user.id), [], 'and nothing was enrolled');
    });

    it('reset -> signed out, refresh token refused -> mail -> wrong password (counted, link kept) -> password -> new app -> new codes -> sign-in at mfa with it; the link works once', async () => {
      const user = await server.newUser('lost');
      // Signed in to the app, with a refresh token, before the phone was lost.
      const browser = new CookieClient(server.url);
      const { tokens } = await rp.signIn(browser, user, { scope: 'openid email offline_access', prompt: 'consent' });
      assert.ok(tokens.refresh_token);
      await addQuestion(store(), (s) => services().hasher.hash(s), user.id);
      const old = await addTotp(store(), user.id, 'Old phone');
      const oldCodes = await addRecoveryCodes(store(), user.id);
      const since = mailbox.messages.length;

      const done = await reset(user.email);
      assert.deepEqual(done.removed.map((m) => [m.id, m.kind]), [[old.id, 'totp']]);
      assert.equal(done.sessionsEnded, 1);
      assert.deepEqual(done.notified, [user.email]);
      assert.deepEqual(await kinds(user.id), ['security-question'], 'the app goes, and the recovery codes with the last possession method');
      assert.equal(await store().codes.countLive('recovery_code', user.id), 0);
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token is revoked');
      const silent = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
      assert.equal(new URL(silent.stoppedAt!).searchParams.get('error'), 'login_required', 'the session ended');

      // The audit row and the user's activity say who, how identity was re-proved, and the ticket.
      const [row] = await rowsOf(user.id);
      assert.deepEqual([row.result, row.actor_type, row.actor_id], ['ok', 'user', (desk as { userId: string }).userId]);
      assert.deepEqual([row.after.proof, row.after.ticket, row.after.sessionsEnded], [PROOF, TICKET, 1]);
      const event = (await store().events.forUser(user.id)).find((e) => e.type === 'user.two_step_reset');
      assert.deepEqual([event?.details.proof, event?.details.ticket, event?.details.removed, event?.ip], [PROOF, TICKET, ['totp'], '198.51.100.30']);
      const t = createRenderer(server.config).t;
      assert.ok(t.has('account.activity.types.user.two_step_reset'), 'the activity page names it');

      const link = await linkOf(user.email, since);
      const token = new URL(link).searchParams.get('token')!;
      assert.ok(!JSON.stringify(done).includes(token) && !JSON.stringify(row).includes(token) && !server.logText().includes(token), 'the link is in the mail only');
      assert.equal((await knex()('one_time_codes').where({ purpose: 'two_step_reset', user_id: user.id }).first()).code_hash.includes(token), false, 'stored hashed');

      // The link: the password first. A wrong one counts and keeps the link.
      const person = new CookieClient(server.url);
      const form = await person.follow(link);
      assert.equal(form.status, 200);
      assert.match(form.body, /Set up two-step verification again/);
      const failuresBefore = await failureCount(knex(), user.email);
      const wrong = await person.submit(form, '/recover-two-step', { password: 'not the password at all' });
      assert.equal(wrong.status, 400);
      assert.match(wrong.body, /That password is not right/);
      assert.equal(await failureCount(knex(), user.email), failuresBefore + 1, 'counted on the account\'s failure counter');
      const methods = await person.submit(wrong, '/recover-two-step', { password: user.password });
      assert.equal(methods.status, 200, methods.body.slice(0, 400));
      assert.match(methods.url, /\/recover-two-step\/methods$/);
      assert.match(methods.body, /Add an authenticator app/);
      assert.doesNotMatch(methods.body, /Get recovery codes|security question/i, 'only possession methods are offered');

      // The link is spent: a second use, even with the right password, is refused.
      const replay = await new CookieClient(server.url).follow(link);
      assert.equal(replay.status, 410);
      const replayPost = await person.submit(form, '/recover-two-step', { password: user.password });
      assert.equal(replayPost.status, 410);

      // The enrolment-only session opens nothing else: not the account page, not another user.
      const account = await person.follow('/account/security');
      assert.doesNotMatch(account.url, /\/account\/security$/, 'the account page asks for a sign-in');

      // Every possession method can be added here, nothing else.
      for (const kind of ['sms', 'webauthn', 'security-key', 'push']) assert.match(methods.body, new RegExp(`href="/recover-two-step/add/${kind}"`), kind);
      const passkey = await person.follow('/recover-two-step/add/webauthn');
      assert.equal(passkey.status, 200);
      assert.match(passkey.body, /action="\/recover-two-step\/add\/webauthn"/);
      for (const kind of ['security-question', 'recovery-code', 'nothing']) assert.equal((await person.follow(`/recover-two-step/add/${kind}`)).status, 404, kind);

      // A new authenticator app, then new recovery codes.
      const setup = await person.follow('/recover-two-step/add/totp');
      assert.equal(setup.status, 200);
      const seed = /id="totp-secret">([A-Z2-7 ]+)</.exec(setup.body)![1]!.replace(/ /g, '');
      const key = base32Decode(seed);
      await awaitFreshStep();
      // The previous step's code (accepted at enrolment), so that the sign-in below can use the current one.
      const beforeAdded = mailbox.messages.length;
      const added = await person.submit(setup, '/recover-two-step/add/totp', { code: totpCode(key, nowSeconds() - 30), label: 'New phone' });
      assert.equal(added.status, 200, added.body.slice(0, 400));
      const codes = recoveryCodesOn(added);
      assert.equal(codes.length, 10, 'new recovery codes, shown once');
      assert.ok(!codes.some((c) => oldCodes.includes(c)));
      assert.deepEqual(await kinds(user.id), ['recovery-code', 'security-question', 'totp']);
      assert.ok(!(await store().authenticators.listForUser(user.id)).some((a) => a.id === old.id), 'the old app is gone');
      const told = await mailbox.next(user.email, { since: beforeAdded });
      assert.match(told.text, /set up again after a help-desk reset: Authenticator app added \(New phone\), new recovery codes made/);
      const over = await person.follow('/recover-two-step/methods');
      assert.equal(over.status, 410, 'the enrolment session ends with the new method');
      const completed = (await store().events.forUser(user.id)).map((e) => e.type);
      assert.ok(['two_step_reset.password_failed', 'two_step_reset.link_used', 'two_step_reset.completed', 'recovery_codes.generated'].every((type) => completed.includes(type)), completed.join());

      // A sign-in at mfa works with the new app.
      const next = new CookieClient(server.url);
      const req = await rp.authorization({ acr_values: MFA });
      const login = await next.follow(req.url);
      const step = await next.submit(login, '/login', { email: user.email, password: user.password });
      assert.match(new URL(step.url).pathname, /\/verify$/);
      assert.match(step.body, /name="code"/);
      const signedIn = await next.submit(step, '/verify', { code: totpCode(key, nowSeconds()) });
      const claims = await throughToApp(next, signedIn as Page & { stoppedAt?: string }, rp, req.checks);
      assert.equal(claims.acr, MFA);
      assert.ok((claims.amr as string[]).includes('otp'));

      // The user's own security activity shows the reset and the recovery.
      const activity = await next.follow('/account/activity');
      assert.equal(activity.status, 200, `${activity.url}: ${activity.body.slice(0, 300)}`);
      assert.match(activity.body, /Two-step verification reset by the help desk/);
      assert.match(activity.body, /Two-step verification set up again after a help-desk reset/);
    });

    it('a link allows a few password tries, each counted, then dies even for the right password; of two right passwords at once, one gets the enrolment session', async () => {
      const user = await withApp('guess');
      const since = mailbox.messages.length;
      await reset(user.id);
      const link = await linkOf(user.email, since);
      const attacker = new CookieClient(server.url);
      let page = await attacker.follow(link);
      const before = await failureCount(knex(), user.email);
      for (let i = 0; i < LINK_PASSWORD_TRIES; i++) {
        page = await attacker.submit(page, '/recover-two-step', { password: `guess number ${i} wrong` });
        // Wrong (400), or refused by the growing delays (429): a try of the link either way.
        assert.ok([400, 429].includes(page.status), `try ${i}: ${page.status}`);
      }
      assert.ok(await failureCount(knex(), user.email) > before, 'the tries count on the account');
      await knex()('counters').where('key', 'like', 'acct:%').delete(); // the delays have passed
      const dead = await attacker.submit(page, '/recover-two-step', { password: user.password });
      assert.equal(dead.status, 410, 'tried out: the right password no longer opens it');
      assert.equal((await new CookieClient(server.url).follow(link)).status, 410, 'and the link says so');
      assert.equal(await store().codes.countLive('two_step_enrol', user.id), 0);

      // Two right passwords at once: exactly one enrolment session.
      await knex()('counters').where('key', 'like', `mail:%:${user.id}`).delete();
      const since2 = mailbox.messages.length;
      await reset(user.id);
      const fresh = await linkOf(user.email, since2);
      const a = new CookieClient(server.url);
      const b = new CookieClient(server.url);
      const [pa, pb] = [await a.follow(fresh), await b.follow(fresh)];
      const answers = await Promise.all([a.submit(pa, '/recover-two-step', { password: user.password }), b.submit(pb, '/recover-two-step', { password: user.password })]);
      assert.deepEqual(answers.map((p) => p.status).sort(), [200, 410]);
      assert.equal(await store().codes.countLive('two_step_enrol', user.id), 1);
    });
  });
});
