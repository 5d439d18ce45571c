/**
 * Editing a registered client (`updateClient`, `latchkey clients update`), and disabling it: the provider
 * accepts what the edit says at once, on every instance sharing the database; an invalid edit is refused
 * with the registration's own words and changes nothing; only an administrator may, and every refusal is
 * in the audit log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { runCommand, type CommandResult } from '../../src/admin/commands.ts';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { addClient, disableClient, enableClient, updateClient } from '../../src/admin/operations/clients.ts';
import type { ClientChanges, ClientInput, RegisteredClient } from '../../src/oidc/clients.ts';
import { CookieClient } from '../helpers/browser.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { postAsClient, sleep, userinfo } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const OLD = 'http://localhost:9999/old-cb';
const NEW = 'http://localhost:9999/new-cb';
const cli: Actor = { via: 'cli', requestId: 'req-clients-update' };
const consoleActor = (userId: string, roles: ('admin' | 'helpdesk' | 'auditor')[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.30', userAgent: 'Console browser' });

/** The refusal a promise ends in (fails the test when it is accepted). */
const refusal = (p: Promise<unknown>): Promise<OperationError> => p.then(() => assert.fail('accepted'), (err: unknown) => err as OperationError);

describe('editing a client', () => {
  let a: TestServer;
  /** A second instance on the same PostgreSQL database (the embedded database belongs to one process). */
  let b: TestServer | undefined;
  const services = () => a.server.services;
  const knex = () => services().database.knex;
  const instances = () => [a, ...(b ? [b] : [])];
  const run = (...argv: string[]): Promise<CommandResult> => runCommand(argv, services(), { stdin: async () => '' });
  let seen = 0;
  /** The audit rows written since the last call. */
  async function newRows(): Promise<{ action: string; result: string; actor_id: string | null; target_id: string | null; reason: string | null; before: unknown; after: unknown }[]> {
    const rows = await knex()('audit_log').where('seq', '>', seen).orderBy('seq');
    if (rows.length) seen = Number(rows.at(-1).seq);
    return rows;
  }

  /**
   * What instance `at` answers to an authorization request of `client` for `redirectUri`: `sign-in` (sent on
   * to the sign-in page) or the error code of the page it shows.
   */
  async function answerAt(at: TestServer, client: RegisteredClient, redirectUri: string): Promise<string> {
    const url = new URL(`${at.url}/auth`);
    url.search = new URLSearchParams({
      client_id: client.clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGwSrEeXbY', code_challenge_method: 'S256', state: 'state-1',
    }).toString();
    const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
    if (res.status === 303 && /\/interaction\//.test(res.headers.get('location') ?? '')) return 'sign-in';
    return /Error code: <code>([a-z_]+)<\/code>/.exec(await res.text())?.[1] ?? `status ${res.status}`;
  }

  /** Waits (at most two seconds) until `check` holds: a running server hears a change when it is committed. */
  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    const end = Date.now() + 2000;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`not within 2 s: ${what}`);
      await sleep(25);
    }
  }

  async function withRoles(prefix: string, roles: string[]) {
    const u = await a.newUser(prefix);
    await knex()('users').where({ id: u.id }).update({ roles: JSON.stringify(roles) });
    return u;
  }

  before(async () => {
    a = await startTestServer();
    if (TEST_DATABASE_URL) b = await startTestServer({ db: a.db, config: { issuer: a.url } });
    await newRows();
  });
  after(async () => {
    await b?.stop();
    await a.stop();
  });

  it(`takes a removed redirect URI away and a new one into use at /auth at once, on every instance (${TEST_DATABASE_URL ? 'two instances' : 'one instance: the second needs PostgreSQL'})`, async () => {
    const user = await a.newUser('edit');
    const client = await a.addClient({ name: 'Notes', redirectUris: [OLD] });
    // Each instance has looked the client up (and keeps it in its memo) before the edit.
    for (const at of instances()) {
      assert.equal(await answerAt(at, client, OLD), 'sign-in');
      assert.equal(await answerAt(at, client, NEW), 'invalid_redirect_uri');
    }

    const res = await run('clients', 'update', client.clientId, '--redirect-uri', NEW, '--json');
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual((JSON.parse(res.stdout) as { redirect_uris: string[] }).redirect_uris, [NEW]);

    for (const at of instances()) {
      await eventually(async () => (await answerAt(at, client, NEW)) === 'sign-in', `${at.url} takes the new redirect URI`);
      assert.equal(await answerAt(at, client, OLD), 'invalid_redirect_uri', `${at.url} refuses the removed one`);
    }
    // A whole sign-in through the new address, with openid-client as the app (its back channel on the last instance).
    const rp = await RelyingParty.create(a.url, { ...client, metadata: { ...client.metadata, redirect_uris: [NEW] } });
    const last = instances().at(-1)!;
    rp.config[oidc.customFetch] = (url, options) => fetch(url.replace(a.url, last.url), options as RequestInit);
    const { claims } = await rp.signIn(new CookieClient(a.url), user);
    assert.equal(claims.sub, user.id);

    const [row] = (await newRows()).filter((r) => r.action === 'clients.update');
    assert.equal(row?.result, 'ok');
    assert.equal(row?.target_id, client.clientId);
    assert.deepEqual([(row?.before as { metadata: { redirect_uris: string[] } }).metadata.redirect_uris, (row?.after as { metadata: { redirect_uris: string[] } }).metadata.redirect_uris], [[OLD], [NEW]]);
  });

  it('changes the rest of what registration sets (name, post-logout URIs, auth method, level, consent, logo, back-channel logout), and the token endpoint follows the new auth method; --unset takes a setting away', async () => {
    const client = await a.addClient({ name: 'Ledger', redirectUris: [OLD], grantTypes: ['authorization_code', 'client_credentials'] });
    const changed = await updateClient(services(), cli, client.clientId, {
      name: 'Ledger 2', postLogoutRedirectUris: ['https://ledger.example.com/bye'], authMethod: 'client_secret_jwt', minimumAcr: 'urn:latchkey:acr:mfa',
      firstParty: true, logoUri: 'https://ledger.example.com/logo.png', backchannelLogoutUri: 'https://ledger.example.com/logout', backchannelLogoutSessionRequired: false,
    });
    assert.equal(changed.name, 'Ledger 2');
    const m = changed.metadata;
    assert.deepEqual(
      [m.client_name, m.post_logout_redirect_uris, m.token_endpoint_auth_method, m.minimum_acr, m.first_party, m.logo_uri, m.backchannel_logout_uri, m.backchannel_logout_session_required],
      ['Ledger 2', ['https://ledger.example.com/bye'], 'client_secret_jwt', 'urn:latchkey:acr:mfa', true, 'https://ledger.example.com/logo.png', 'https://ledger.example.com/logout', false],
    );
    assert.deepEqual(m.redirect_uris, [OLD], 'what the edit does not name stays');
    // The token endpoint wants an assertion signed with the secret now (oidc-provider takes a secret in the
    // header or the body alike for the other two methods), and openid-client signs one.
    const jwtApp = await oidc.discovery(new URL(a.url), client.clientId, {}, oidc.ClientSecretJwt(client.clientSecret!), { execute: [oidc.allowInsecureRequests] });
    assert.ok((await oidc.clientCredentialsGrant(jwtApp)).access_token);
    const basic = await postAsClient(`${a.url}/token`, client, { grant_type: 'client_credentials' });
    assert.equal(basic.status, 401);
    assert.equal(((await basic.json()) as { error: string }).error, 'invalid_client');

    const res = await run('clients', 'update', client.clientId, '--unset', 'minimum-acr', '--unset', 'logo-uri', '--unset', 'backchannel-logout-uri', '--first-party', 'no');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^updated client ${client.clientId} \\(Ledger 2\\); running servers use it at once\n`));
    const after = (await services().store.clients.find(client.clientId))!.metadata;
    for (const key of ['minimum_acr', 'logo_uri', 'backchannel_logout_uri', 'backchannel_logout_session_required', 'first_party']) assert.equal(after[key], undefined, key);
    assert.deepEqual(after.post_logout_redirect_uris, ['https://ledger.example.com/bye']);
  });

  it('keeps every setting an edit does not name, whatever the client registered', async () => {
    const registrations: ClientInput[] = [
      { name: 'Full', redirectUris: [OLD, NEW], postLogoutRedirectUris: ['https://full.example.com/bye'], backchannelLogoutUri: 'https://full.example.com/logout',
        minimumAcr: 'phr', idTokenAlg: 'EdDSA', firstParty: true, pkce: false, logoUri: 'https://full.example.com/logo.png' },
      { name: 'Phone', public: true, redirectUris: ['http://127.0.0.1:7777/cb'] },
      { name: 'TV', public: true, grantTypes: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'] },
      { name: 'API', grantTypes: ['client_credentials'], resourceServer: true, authMethod: 'client_secret_post' },
      { name: 'Desk', grantTypes: ['urn:openid:params:grant-type:ciba'], cibaMode: 'ping', cibaNotificationEndpoint: 'https://desk.example.com/ping' },
    ];
    for (const registration of registrations) {
      const client = await addClient(services(), cli, registration);
      const edited = await updateClient(services(), cli, client.clientId, { name: `${registration.name} renamed` });
      assert.deepEqual(edited.metadata, { ...client.metadata, client_name: `${registration.name} renamed` }, registration.name);
    }
  });

  it('takes the CIBA grant away with its delivery settings', async () => {
    const client = await addClient(services(), cli, { name: 'Help desk', grantTypes: ['urn:openid:params:grant-type:ciba'], cibaMode: 'poll' });
    const edited = await updateClient(services(), cli, client.clientId, { grantTypes: ['client_credentials'] });
    assert.deepEqual(edited.metadata.grant_types, ['client_credentials']);
    assert.equal(edited.metadata.backchannel_token_delivery_mode, undefined, 'no CIBA mode is left behind');
  });

  it('refuses an invalid edit with the very words of registration, and changes nothing', async () => {
    const client = await a.addClient({ name: 'Strict', redirectUris: [OLD] });
    const before = await services().store.clients.find(client.clientId);
    await newRows();
    const base: ClientInput = { name: 'Strict', redirectUris: [OLD] };
    const cases: [ClientChanges, ClientInput][] = [
      [{ redirectUris: ['http://app.example.com/cb'] }, { ...base, redirectUris: ['http://app.example.com/cb'] }],
      [{ redirectUris: ['https://app.example.com/*'] }, { ...base, redirectUris: ['https://app.example.com/*'] }],
      [{ redirectUris: [] }, { ...base, redirectUris: [] }],
      [{ grantTypes: ['password' as never] }, { ...base, grantTypes: ['password' as never] }],
      [{ grantTypes: ['refresh_token'], redirectUris: [] }, { ...base, grantTypes: ['refresh_token'], redirectUris: [] }],
      [{ minimumAcr: 'gold' as never }, { ...base, minimumAcr: 'gold' as never }],
      [{ backchannelLogoutUri: 'http://rp.example.com/logout' }, { ...base, backchannelLogoutUri: 'http://rp.example.com/logout' }],
      [{ logoUri: 'ftp://rp.example.com/logo.png' }, { ...base, logoUri: 'ftp://rp.example.com/logo.png' }],
      [{ name: ' ' }, { ...base, name: ' ' }],
      [{ backchannelLogoutSessionRequired: false }, { ...base, backchannelLogoutSessionRequired: false }],
    ];
    for (const [changes, registration] of cases) {
      const said: string = (await refusal(addClient(services(), cli, registration))).message;
      const err = await refusal(updateClient(services(), cli, client.clientId, changes));
      assert.equal(err.status, 400, JSON.stringify(changes));
      assert.equal(err.message, said, `the same words as registration for ${JSON.stringify(changes)}`);
    }
    // What is the edit's own: a confidential client stays confidential; an empty edit; no such client.
    assert.match((await refusal(updateClient(services(), cli, client.clientId, { authMethod: 'none' }))).message, /confidential client keeps a secret/);
    assert.equal((await refusal(updateClient(services(), cli, client.clientId, {}))).code, 'client.no_change');
    assert.equal((await refusal(updateClient(services(), cli, 'no-such-client', { name: 'X' }))).status, 404);

    assert.deepEqual(await services().store.clients.find(client.clientId), before, 'nothing changed');
    assert.equal(await answerAt(a, client, OLD), 'sign-in');
    const updates = (await newRows()).filter((r) => r.action === 'clients.update');
    assert.equal(updates.length, cases.length + 3);
    assert.ok(updates.every((r) => r.result === 'denied' && r.reason), 'every refusal is a denied row with its reason');

    // The CLI names what it cannot read.
    const [unset, yesNo] = await Promise.all([
      run('clients', 'update', client.clientId, '--unset', 'name'),
      run('clients', 'update', client.clientId, '--first-party', 'maybe'),
    ]);
    assert.deepEqual([unset.code, unset.stderr], [2, 'latchkey: --unset: name is not one of minimum-acr, logo-uri, backchannel-logout-uri, post-logout-redirect-uri\n']);
    assert.deepEqual([yesNo.code, yesNo.stderr], [2, 'latchkey: --first-party: maybe must be yes or no\n']);
    const refusedByCli = await run('clients', 'update', client.clientId, '--redirect-uri', 'http://app.example.com/cb');
    assert.equal(refusedByCli.code, 1);
    assert.equal(refusedByCli.stderr, 'latchkey: http://app.example.com/cb must use https (http is allowed only for localhost, 127.0.0.1 and [::1])\n');
  });

  it('disables a client: invalid_client at /auth and /token, its tokens inactive at introspection and refused at userinfo; enabling brings it back', async () => {
    await newRows();
    const client = await a.addClient({ name: 'Paused', redirectUris: [OLD], grantTypes: ['authorization_code', 'client_credentials'] });
    const api = await RelyingParty.create(a.url, await a.addClient({ name: 'API', grantTypes: ['client_credentials'], resourceServer: true }));
    const rp = await RelyingParty.create(a.url, client);
    const { access_token } = await oidc.clientCredentialsGrant(rp.config);
    assert.equal((await oidc.tokenIntrospection(api.config, access_token)).active, true);
    const signedIn = (await rp.signIn(new CookieClient(a.url), await a.newUser('paused'))).tokens.access_token;
    assert.equal((await userinfo(a.url, signedIn)).status, 200);

    const res = await run('clients', 'disable', client.clientId);
    assert.equal(res.code, 0, res.stderr);
    for (const at of instances()) await eventually(async () => (await answerAt(at, client, OLD)) === 'invalid_client', `${at.url} no longer knows the client`);
    const token = await postAsClient(`${a.url}/token`, client, { grant_type: 'client_credentials' });
    assert.equal(token.status, 401);
    assert.equal(((await token.json()) as { error: string }).error, 'invalid_client');
    assert.equal((await oidc.tokenIntrospection(api.config, access_token)).active, false, 'its token is inactive');
    const refused = await userinfo(a.url, signedIn);
    assert.deepEqual([refused.status, refused.body?.error], [401, 'invalid_token'], 'and refused at userinfo');
    assert.equal((await run('clients', 'disable', client.clientId)).stderr, `latchkey: client ${client.clientId} is already disabled\n`);

    assert.equal((await enableClient(services(), cli, client.clientId)).disabledAt, null);
    for (const at of instances()) await eventually(async () => (await answerAt(at, client, OLD)) === 'sign-in', `${at.url} knows the client again`);
    assert.equal((await oidc.tokenIntrospection(api.config, access_token)).active, true, 'an unexpired token works again');
    assert.equal((await userinfo(a.url, signedIn)).status, 200);
    const rows = (await newRows()).filter((r) => r.action.startsWith('clients.'));
    assert.deepEqual(rows.filter((r) => r.action !== 'clients.add').map((r) => [r.action, r.result]), [['clients.disable', 'ok'], ['clients.disable', 'denied'], ['clients.enable', 'ok']]);
  });

  it('is for administrators: a help-desk account and an auditor are refused, and each refusal is audited', async () => {
    const client = await a.addClient({ name: 'Guarded', redirectUris: [OLD] });
    const before = await services().store.clients.find(client.clientId);
    await newRows();
    for (const role of ['helpdesk', 'auditor'] as const) {
      const who = await withRoles(role, [role]);
      const actor = consoleActor(who.id, [role]);
      const errors = await Promise.all([
        updateClient(services(), actor, client.clientId, { redirectUris: [NEW] }),
        disableClient(services(), actor, client.clientId),
        enableClient(services(), actor, client.clientId),
      ].map(refusal));
      for (const err of errors) assert.deepEqual([err.status, err.code], [403, 'permission.denied']);
      const rows = await newRows();
      assert.deepEqual(rows.map((r) => r.action).sort(), ['clients.disable', 'clients.enable', 'clients.update']);
      assert.ok(rows.every((r) => r.result === 'denied' && r.actor_id === who.id && r.target_id === client.clientId && r.reason?.startsWith('permission.denied: ')), JSON.stringify(rows));
    }
    assert.deepEqual(await services().store.clients.find(client.clientId), before);
    const admin = consoleActor((await withRoles('admin', ['admin'])).id, ['admin']);
    assert.equal((await updateClient(services(), admin, client.clientId, { name: 'Guarded 2' })).name, 'Guarded 2');
  });

  it('clients update --help and clients disable --help say what they do and list every option', async () => {
    const help = await run('clients', 'update', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: latchkey clients update CLIENT_ID \[options\]$/m);
    for (const option of ['--name N', '--redirect-uri U', '--post-logout-redirect-uri U', '--grant-type T', '--auth-method M', '--id-token-alg A',
      '--minimum-acr L', '--first-party YN', '--logo-uri U', '--backchannel-logout-uri U', '--backchannel-logout-session YN', '--unset S', '--json']) {
      assert.match(help.stdout, new RegExp(`^ {2}${option} `, 'm'), option);
    }
    const [disable, enable] = await Promise.all([run('clients', 'disable', '--help'), run('clients', 'enable', '-h')]);
    assert.match(disable.stdout, /invalid_client everywhere/);
    assert.match(enable.stdout, /^Usage: latchkey clients enable CLIENT_ID/m);
  });
});
