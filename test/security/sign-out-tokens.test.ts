/**
 * Signing other sessions out ends what those sessions gave to apps, offline access included: a thief who
 * signed in with a stolen password keeps no refresh token and no access token. The same app used from the
 * session that stays keeps working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { post, signInToAccount } from '../account/helpers.ts';
import { CookieClient } from '../helpers/browser.ts';
import { rejectsWith } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('signing out other sessions ends their apps\' tokens', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let notes: RelyingParty;
  let ledger: RelyingParty;
  let users = 0;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    notes = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: ['http://localhost:9999/cb'] }));
    ledger = await RelyingParty.create(server.url, await server.addClient({ name: 'Ledger', redirectUris: ['http://localhost:9998/cb'] }));
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  const offline = { scope: 'openid email offline_access' };

  /**
   * A user signed in twice: the owner's browser (account page and Notes, offline) and a thief's browser
   * (Notes and Ledger, both offline). The tokens each browser's apps hold.
   */
  async function ownerAndThief() {
    const user = { email: `victim${++users}@example.com`, password: `victim ${users} has a long password` };
    await server.addUser(user);
    const owner = new CookieClient(server.url);
    await signInToAccount(owner, user);
    const ownerNotes = (await notes.signIn(owner, user, offline)).tokens;
    const thief = new CookieClient(server.url);
    const thiefNotes = (await notes.signIn(thief, user, offline)).tokens;
    const thiefLedger = (await ledger.signIn(thief, user, offline)).tokens;
    for (const t of [ownerNotes, thiefNotes, thiefLedger]) assert.ok(t.refresh_token && t.access_token);
    return { user, owner, thief, ownerNotes, thiefNotes, thiefLedger };
  }

  type Tokens = Awaited<ReturnType<typeof ownerAndThief>>['ownerNotes'];

  async function assertDead(rp: RelyingParty, tokens: Tokens) {
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, false, 'the access token is inactive');
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.refresh_token!)).active, false, 'the refresh token is inactive');
    await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token no longer refreshes');
    await assert.rejects(oidc.fetchUserInfo(rp.config, tokens.access_token, oidc.skipSubjectCheck), 'the access token no longer works at userinfo');
  }

  async function assertAlive(rp: RelyingParty, tokens: Tokens) {
    assert.equal((await oidc.tokenIntrospection(rp.config, tokens.access_token)).active, true, 'the access token is active');
    assert.ok((await oidc.refreshTokenGrant(rp.config, tokens.refresh_token!)).access_token, 'the refresh token refreshes');
  }

  it('"Sign out all other sessions": the other session\'s offline tokens die, this session\'s stay, and the page names the apps', async () => {
    const { owner, ownerNotes, thiefNotes, thiefLedger } = await ownerAndThief();
    const page = await owner.follow('/account/sessions');
    const done = await post(owner, page, '/account/sessions/sign-out-others');
    assert.match(done.body, /All your other sessions were signed out\. These apps were signed out there too and must ask you to sign in again: (Notes, Ledger|Ledger, Notes)\./);
    await assertDead(notes, thiefNotes);
    await assertDead(ledger, thiefLedger);
    await assertAlive(notes, ownerNotes);
  });

  it('signing out one other session from the list ends its offline tokens', async () => {
    const { user, owner, ownerNotes, thiefNotes, thiefLedger } = await ownerAndThief();
    const page = await owner.follow('/account/sessions');
    const theirs = /name="session" value="([^"]+)"/.exec(page.body)![1]!;
    const store = server.server.services.store;
    assert.equal((await store.sessions.listForUser((await store.users.findByEmail(user.email))!.id)).length, 2);
    const done = await post(owner, page, '/account/sessions/sign-out', { session: theirs });
    assert.match(done.body, /That session was signed out\. These apps were signed out there too/);
    await assertDead(notes, thiefNotes);
    await assertDead(ledger, thiefLedger);
    await assertAlive(notes, ownerNotes);
  });

  it('"Change password" with "Sign out my other sessions" ends the other session\'s offline tokens; without it they stay', async () => {
    const { user, owner, ownerNotes, thiefNotes, thiefLedger } = await ownerAndThief();
    let page = await owner.follow('/account/password');
    const kept = await post(owner, page, '/account/password', { current: user.password, password: 'an interim long passphrase' });
    assert.match(kept.body, /Your password was changed\./);
    assert.doesNotMatch(kept.body, /These apps were signed out/);
    await assertAlive(ledger, thiefLedger);

    page = await owner.follow('/account/password');
    const done = await post(owner, page, '/account/password', { current: 'an interim long passphrase', password: 'the owner took it back', signOutOthers: 'yes' });
    assert.match(done.body, /Your password was changed\. These apps were signed out there too/);
    await assertDead(notes, thiefNotes);
    await assertDead(ledger, thiefLedger);
    await assertAlive(notes, ownerNotes);
    const event = (await server.server.services.store.events.forUser((await server.server.services.store.users.findByEmail(user.email))!.id))
      .find((e) => e.type === 'password.changed' && e.details.signedOutOthers === true);
    assert.deepEqual([...(event?.details.apps as string[])].sort(), [notes.client.clientId, ledger.client.clientId].sort());
  });

  it('names no apps on a page reached by a link: the notice comes from the user\'s own recent change', async () => {
    const { owner } = await ownerAndThief();
    const page = await owner.follow('/account/sessions?done=sessions&apps=Evil');
    assert.match(page.body, /All your other sessions were signed out\./);
    assert.doesNotMatch(page.body, /These apps were signed out|Evil/);
  });
});
