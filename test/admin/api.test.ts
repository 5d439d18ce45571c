/**
 * The admin REST API (issue 13, part 8) with real tokens from the real token endpoint: the scopes hold
 * (a token without admin:keys cannot rotate keys; a users.read token cannot write), each refusal audited
 * with the client as the actor; a help-desk reset and a disable work end to end (their effects in the
 * store); lists page by keyset and stay stable while rows are added; errors are problem details; every
 * answer is checked against its route's response schema, so a route answering outside it fails here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { runCommand } from '../../src/admin/commands.ts';
import { problemSchema } from '../../src/admin/api/problem.ts';
import { API_PREFIX, API_ROUTES } from '../../src/admin/api/table.ts';
import { adminApiResource } from '../../src/oidc/admin-api.ts';
import { CookieClient } from '../helpers/browser.ts';
import { postAsClient, rejectsWith } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addQuestion, addRecoveryCodes, addTotp } from '../helpers/two-step.ts';

interface ApiClient { clientId: string; clientSecret: string; scopes: string }
interface Answer { status: number; type: string; headers: Headers; body: any }

describe('the admin REST API', () => {
  let server: TestServer;
  let mailbox: MailBox;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  let full: ApiClient;
  let reader: ApiClient;
  let noKeys: ApiClient;
  let rp: RelyingParty;

  /** Registers a client of the API through the CLI, as an operator would. */
  async function registerApiClient(name: string, scopes: string): Promise<ApiClient> {
    const out = await runCommand(['clients', 'add', '--name', name, '--grant-type', 'client_credentials', '--scope', scopes, '--json'], services(), { stdin: async () => '' });
    assert.equal(out.code, 0, out.stderr);
    const created = JSON.parse(out.stdout) as { client_id: string; client_secret: string; scope: string };
    assert.equal(created.scope, scopes);
    return { clientId: created.client_id, clientSecret: created.client_secret, scopes };
  }

  /** A token from POST /token (client_credentials, resource = the API), for every scope the client has unless told. */
  async function token(client: ApiClient, scope = client.scopes): Promise<string> {
    const res = await postAsClient(`${server.url}/token`, client, { grant_type: 'client_credentials', resource: adminApiResource(server.config), scope });
    const body = (await res.json()) as { access_token?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.access_token!;
  }

  /** Calls the API and checks the answer against the route's schema (its response, or problem details). */
  async function call(operationId: string, token: string | undefined, opts: { params?: Record<string, string>; query?: string; body?: unknown } = {}): Promise<Answer> {
    const route = API_ROUTES.find((r) => r.operationId === operationId);
    assert.ok(route, operationId);
    const path = route.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(opts.params?.[name] ?? ''));
    const res = await fetch(`${server.url}${API_PREFIX}${path}${opts.query ? `?${opts.query}` : ''}`, {
      method: route.method.toUpperCase(),
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const answer = await read(res);
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    if (res.status < 400) {
      assert.equal(res.status, route.status, JSON.stringify(answer.body));
      if (route.response) route.response.parse(answer.body);
    } else checkProblem(answer);
    await leftOneRow(answer, token, operationId);
    return answer;
  }

  /**
   * Every call leaves one audit row (this request's id), whose actor is the token's client: the row of the
   * operation, or of the refusal at the edge (no client known: its id null).
   */
  async function leftOneRow(answer: Answer, token: string | undefined, operationId: string): Promise<void> {
    const rows = await knex()('audit_log').where({ request_id: answer.headers.get('x-request-id') });
    assert.equal(rows.length, 1, `one audit row for the call (status ${answer.status})`);
    const clientId = answer.status === 401 ? null : (decodeJwt(token!).client_id as string);
    assert.deepEqual([rows[0].actor_type, rows[0].actor_id], ['client', clientId]);
    assert.equal(rows[0].result, answer.status < 400 ? 'ok' : 'denied');
  }

  async function read(res: Response): Promise<Answer> {
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, type, headers: res.headers, body: text && type.includes('json') ? JSON.parse(text) : text };
  }

  function checkProblem(answer: Answer, status?: number, code?: string): void {
    assert.equal(answer.type, 'application/problem+json');
    problemSchema.parse(answer.body);
    assert.equal(answer.body.status, answer.status);
    if (status !== undefined) assert.equal(answer.status, status, JSON.stringify(answer.body));
    if (code !== undefined) assert.equal(answer.body.code, code);
    assert.doesNotMatch(JSON.stringify(answer.body), /at .*\.ts:\d+/, 'no stack trace');
  }

  const auditRows = (clientId: string) => knex()('audit_log').where({ actor_type: 'client', actor_id: clientId }).orderBy('seq');

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({ config: { mail: { smtpUrl: mailbox.url } } });
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Shop', redirectUris: ['http://localhost:9999/cb'] }));
    full = await registerApiClient('Ops automation', 'admin:users.read admin:users.write admin:clients admin:keys admin:audit.read');
    reader = await registerApiClient('Directory sync', 'admin:users.read');
    noKeys = await registerApiClient('Ops without keys', 'admin:users.read admin:users.write admin:clients admin:audit.read');
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  describe('scopes', () => {
    it('refuses to rotate keys without admin:keys: 403 problem, the key set unchanged, the denial audited with the client as the actor', async () => {
      const kidsBefore = (await services().store.signingKeys.list()).map((k) => `${k.kid}:${k.state}`).sort();
      const t = await token(noKeys);
      const answer = await call('rotateKeys', t, { body: {} });
      checkProblem(answer, 403, 'permission.denied');
      assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer .*error="insufficient_scope".*scope="admin:keys"/);
      assert.deepEqual((await services().store.signingKeys.list()).map((k) => `${k.kid}:${k.state}`).sort(), kidsBefore);
      const [row] = (await auditRows(noKeys.clientId)).filter((r) => r.action === 'keys.rotate');
      assert.equal(row?.result, 'denied');
      assert.match(row.reason, /^permission\.denied: /);
      // A token asked for admin:keys by this client is refused at the token endpoint (its allow list).
      const res = await postAsClient(`${server.url}/token`, noKeys, { grant_type: 'client_credentials', resource: adminApiResource(server.config), scope: 'admin:keys' });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_scope');
    });

    it('lets a client with admin:keys rotate them, through a token from openid-client (client credentials with a resource)', async () => {
      const config = await oidc.discovery(new URL(server.url), full.clientId, { client_secret: full.clientSecret }, oidc.ClientSecretBasic(full.clientSecret), { execute: [oidc.allowInsecureRequests] });
      const tokens = await oidc.clientCredentialsGrant(config, { resource: adminApiResource(server.config), scope: 'admin:keys' });
      assert.equal(tokens.scope, 'admin:keys');
      const answer = await call('rotateKeys', tokens.access_token, { body: { algs: ['ES256'] } });
      assert.equal(answer.body.rotated.length, 1);
      const keys = await services().store.signingKeys.list();
      assert.equal(keys.find((k) => k.kid === answer.body.rotated[0])?.state, 'next', 'published, signing after two key refreshes');
      const [row] = (await auditRows(full.clientId)).filter((r) => r.action === 'keys.rotate');
      assert.deepEqual([row?.result, row?.ip], ['ok', '127.0.0.1']);
    });

    it('lets a users.read token read but never write: disable, invite and the help-desk reset are refused and audited', async () => {
      const user = await server.newUser('readonly-target');
      const t = await token(reader);
      const found = await call('getUser', t, { params: { id: user.id } });
      assert.equal(found.body.email, user.email);
      checkProblem(await call('disableUser', t, { params: { id: user.id } }), 403, 'permission.denied');
      checkProblem(await call('inviteUser', t, { body: { email: 'never@example.com' } }), 403, 'permission.denied');
      checkProblem(await call('resetTwoStep', t, { params: { id: user.id }, body: { methods: 'all', proof: 'p', ticket: 't' } }), 403, 'permission.denied');
      assert.equal((await services().store.users.findById(user.id))?.status, 'active');
      assert.equal(await services().store.users.findByEmail('never@example.com'), undefined);
      const rows = await auditRows(reader.clientId);
      assert.deepEqual(rows.filter((r) => r.result === 'denied').map((r) => r.action), ['users.disable', 'users.invite', 'users.reset_two_step']);
      assert.deepEqual(rows.filter((r) => r.action === 'users.show').map((r) => [r.result, r.target_id]), [['ok', user.id]]);
    });

    it('gives the admin API\'s scopes only to a client whose one grant is client_credentials (the CLI refuses the rest)', async () => {
      const out = await runCommand(['clients', 'add', '--name', 'Web app', '--redirect-uri', 'https://web.example.com/cb', '--scope', 'openid admin:keys'], services(), { stdin: async () => '' });
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, /admin API's scopes \(admin:…\) are for a client whose only grant type is client_credentials/);
    });

    it('gives a client registered without the API\'s scopes no token for the API at all (the provider refuses: invalid_target)', async () => {
      const worker = await server.addClient({ name: 'Unrelated worker', grantTypes: ['client_credentials'] });
      const res = await postAsClient(`${server.url}/token`, { clientId: worker.clientId, clientSecret: worker.clientSecret! },
        { grant_type: 'client_credentials', resource: adminApiResource(server.config), scope: 'admin:keys admin:users.read' });
      const body = (await res.json()) as { error?: string; access_token?: string };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.error, 'invalid_target');
      assert.equal(body.access_token, undefined);
    });

    it('refuses an admin scope the client is not registered for (invalid_scope), and issues the ones it is', async () => {
      const narrow = await registerApiClient('Narrow', 'admin:users.read');
      const res = await postAsClient(`${server.url}/token`, narrow, { grant_type: 'client_credentials', resource: adminApiResource(server.config), scope: 'admin:users.read admin:keys' });
      const body = (await res.json()) as { error?: string; scope?: string; access_token?: string };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.deepEqual([body.error, body.scope, body.access_token], ['invalid_scope', 'admin:keys', undefined]);
      const own = await token(narrow);
      assert.equal(decodeJwt(own).scope, 'admin:users.read');
    });

    it('takes a scope away at once when the client is registered without it, whatever its token says', async () => {
      const shrinking = await registerApiClient('Shrinking', 'admin:users.read admin:audit.read');
      const t = await token(shrinking);
      await call('listAudit', t, { query: 'limit=1' });
      const out = await runCommand(['clients', 'update', shrinking.clientId, '--scope', 'admin:users.read'], services(), { stdin: async () => '' });
      assert.equal(out.code, 0, out.stderr);
      checkProblem(await call('listAudit', t, { query: 'limit=1' }), 403, 'permission.denied');
    });

    it('never lets an API client change an account that holds a console role (reading it is fine)', async () => {
      const helper = await server.newUser('role-holder');
      await knex()('users').where({ id: helper.id }).update({ roles: JSON.stringify(['helpdesk']) });
      const t = await token(full);
      assert.deepEqual((await call('getUser', t, { params: { id: helper.id } })).body.roles, ['helpdesk']);
      const refused = await call('disableUser', t, { params: { id: helper.id } });
      checkProblem(refused, 403, 'permission.denied');
      assert.match(refused.body.detail, /never changes an account that holds a role/);
      assert.equal((await services().store.users.findById(helper.id))?.status, 'active');
    });
    it('never lets admin:clients mint or take over a client of the admin API: registering, granting scopes, rotating, disabling, removing one', async () => {
      const clientsOnly = await registerApiClient('Clients only', 'admin:clients');
      const keysClient = await registerApiClient('Key rotator', 'admin:keys');
      const t = await token(clientsOnly);
      const before = (await services().store.clients.list()).length;
      const minted = await call('addClient', t, { body: { name: 'Evil', grant_types: ['client_credentials'], scopes: ['admin:keys', 'admin:users.write'] } });
      checkProblem(minted, 403, 'permission.denied');
      assert.match(minted.body.detail, /never registers, changes or takes over a client of the admin API/);
      assert.equal((await services().store.clients.list()).length, before, 'nothing registered');
      const self = await call('updateClient', t, { params: { client_id: clientsOnly.clientId }, body: { scopes: ['admin:clients', 'admin:keys'] } });
      checkProblem(self, 403, 'permission.denied');
      const plain = await call('addClient', t, { body: { name: 'Plain worker', grant_types: ['client_credentials'] } });
      checkProblem(await call('updateClient', t, { params: { client_id: plain.body.client_id }, body: { scopes: ['admin:keys'] } }), 403, 'permission.denied');
      for (const [operationId, body] of [['rotateClientSecret', { grace_seconds: 0 }], ['disableClient', undefined], ['removeClient', undefined]] as const) {
        checkProblem(await call(operationId, t, { params: { client_id: keysClient.clientId }, ...(body ? { body } : {}) }), 403, 'permission.denied');
      }
      const stored = await services().store.clients.find(keysClient.clientId);
      assert.deepEqual([stored?.metadata.scope, stored?.disabledAt, stored?.previousSecret ?? null], ['admin:keys', null, null], 'the key rotator is untouched');
      assert.equal(decodeJwt(await token(keysClient)).scope, 'admin:keys', 'its owner still gets its token');
      assert.equal((await services().store.clients.find(clientsOnly.clientId))?.metadata.scope, 'admin:clients');
      const denied = (await auditRows(clientsOnly.clientId)).filter((r) => r.result === 'denied').map((r) => r.action);
      assert.deepEqual(denied, ['clients.add', 'clients.update', 'clients.update', 'clients.rotate_secret', 'clients.disable', 'clients.remove']);
    });
  });

  describe('users end to end', () => {
    it('disables a user: their session and refresh token end, the store says disabled, their activity and the audit row name the client', async () => {
      const user = await server.newUser('to-disable');
      const { tokens } = await rp.signIn(new CookieClient(server.url), user, { scope: 'openid email offline_access' });
      assert.ok(tokens.refresh_token);
      const t = await token(full);
      const sessions = await call('listSessions', t, { params: { id: user.id } });
      assert.equal(sessions.body.items.length, 1);
      const answer = await call('disableUser', t, { params: { id: user.email } });
      assert.deepEqual([answer.body.id, answer.body.status, answer.body.sessions_ended], [user.id, 'disabled', 1]);
      await rejectsWith(oidc.refreshTokenGrant(rp.config, tokens.refresh_token!), 'invalid_grant', 'the refresh token is revoked');
      assert.equal((await call('listSessions', t, { params: { id: user.id } })).body.items.length, 0);
      assert.equal((await services().store.users.findById(user.id))?.status, 'disabled');
      const rows = (await auditRows(full.clientId)).filter((r) => r.action === 'users.disable' && r.target_id === user.id);
      assert.deepEqual(rows.map((r) => [r.result, r.actor_type]), [['ok', 'client']]);
      const [event] = (await services().store.events.forUser(user.id)).filter((e) => e.type === 'user.disabled');
      assert.deepEqual(event?.details, { via: 'api', byClient: full.clientId, sessionsEnded: 1 });
      await call('enableUser', t, { params: { id: user.id } });
      assert.equal((await services().store.users.findById(user.id))?.status, 'active');
    });

    it('runs a help-desk reset: the methods go, a link is mailed, and the audit row keeps the proof and the ticket', async () => {
      const user = await server.newUser('lost-phone');
      await addQuestion(services().store, (s) => services().hasher.hash(s), user.id);
      const app = await addTotp(services().store, user.id, 'Old phone');
      await addRecoveryCodes(services().store, user.id);
      const t = await token(full);
      const detail = await call('getUser', t, { params: { id: user.id } });
      assert.deepEqual(detail.body.methods.filter((m: { possession: boolean }) => m.possession).map((m: { id: string }) => m.id), [app.id]);
      const since = mailbox.messages.length;
      const answer = await call('resetTwoStep', t, { params: { id: user.id }, body: { methods: [app.id], proof: 'video call + passport', ticket: 'HD-77' } });
      assert.ok(answer.body.removed.some((m: { id: string }) => m.id === app.id));
      assert.equal(answer.body.sessions_ended, 0);
      const methods = await services().store.authenticators.listForUser(user.id);
      assert.equal(methods.some((m) => m.id === app.id), false, 'the lost app is gone from the store');
      assert.ok(methods.some((m) => m.kind === 'security-question'), 'the security question stays');
      assert.ok((await services().store.users.findById(user.id))?.recoveryPendingAt);
      const mail = await mailbox.next(user.email, { since });
      assert.match(mailbox.link(mail), /\/recover-two-step\?token=/);
      const [row] = (await auditRows(full.clientId)).filter((r) => r.action === 'users.reset_two_step');
      assert.equal(row?.result, 'ok');
      assert.deepEqual([row.after.proof, row.after.ticket], ['video call + passport', 'HD-77']);
    });

    it('invites a user (mailed link, 201) and deletes one (204), each audited with the client', async () => {
      const t = await token(full);
      const since = mailbox.messages.length;
      const invited = await call('inviteUser', t, { body: { email: 'invited-by-api@example.com', name: 'Ivy' } });
      assert.deepEqual([invited.body.email, invited.body.status], ['invited-by-api@example.com', 'active']);
      assert.match(mailbox.link(await mailbox.next('invited-by-api@example.com', { since })), /\/invite\?token=/);
      const gone = await call('deleteUser', t, { params: { id: invited.body.id } });
      assert.equal(gone.body, '');
      assert.equal(await services().store.users.findById(invited.body.id), undefined);
      const actions = (await auditRows(full.clientId)).filter((r) => r.target_id === invited.body.id).map((r) => `${r.action}:${r.result}`);
      assert.deepEqual(actions, ['users.invite:ok', 'users.delete:ok']);
    });
  });

  describe('lists', () => {
    it('pages users by keyset: users added while paging neither shift nor repeat a row', async () => {
      for (let i = 0; i < 5; i++) await server.newUser('pager');
      const t = await token(full);
      const first = await call('searchUsers', t, { query: 'query=pager&limit=2' });
      assert.equal(first.body.items.length, 2);
      assert.ok(first.body.next_cursor);
      for (let i = 0; i < 3; i++) await server.newUser('pager');
      const seen = [...first.body.items.map((u: { id: string }) => u.id)];
      let cursor: string | null = first.body.next_cursor;
      while (cursor) {
        const page = await call('searchUsers', t, { query: `query=pager&limit=2&cursor=${encodeURIComponent(cursor)}` });
        seen.push(...page.body.items.map((u: { id: string }) => u.id));
        cursor = page.body.next_cursor;
      }
      assert.equal(seen.length, 5, 'the five users there when paging began, each once');
      assert.equal(new Set(seen).size, 5);
    });

    it('pages the audit log by keyset while every call appends rows to it', async () => {
      const t = await token(full);
      const first = await call('listAudit', t, { query: 'limit=3' });
      const headSeq = first.body.items[0].seq;
      const seen: number[] = first.body.items.map((r: { seq: number }) => r.seq);
      let cursor: string | null = first.body.next_cursor;
      for (let i = 0; i < 4 && cursor; i++) {
        const page = await call('listAudit', t, { query: `limit=3&cursor=${encodeURIComponent(cursor)}` });
        seen.push(...page.body.items.map((r: { seq: number }) => r.seq));
        cursor = page.body.next_cursor;
      }
      // Every call appended a row (audit.list), yet the pages went on below the first one, without a gap or a repeat.
      assert.deepEqual(seen, seen.map((_, i) => headSeq - i));
      const latest = await call('listAudit', t, { query: 'limit=1' });
      assert.ok(latest.body.items[0].seq > headSeq);
      assert.equal(latest.body.items[0].action, 'audit.list');
      assert.equal(latest.body.items[0].actor_id, full.clientId);
    });

    it('pages clients by id, stable while clients are added, and refuses a cursor it did not give out', async () => {
      const t = await token(full);
      const first = await call('listClients', t, { query: 'limit=2' });
      const seen = first.body.items.map((c: { client_id: string }) => c.client_id);
      await registerApiClient('Added while paging', 'admin:users.read');
      let cursor: string | null = first.body.next_cursor;
      while (cursor) {
        const page = await call('listClients', t, { query: `limit=2&cursor=${cursor}` });
        seen.push(...page.body.items.map((c: { client_id: string }) => c.client_id));
        cursor = page.body.next_cursor;
      }
      assert.deepEqual(seen, [...seen].sort());
      assert.equal(new Set(seen).size, seen.length);
      checkProblem(await call('listClients', t, { query: 'cursor=bm90LWEtY3Vyc29y' }), 400, 'request.invalid');
    });
  });

  describe('clients and keys', () => {
    it('creates a client with its secret in the 201 answer once, edits, rotates its secret and removes it', async () => {
      const t = await token(full);
      const created = await call('addClient', t, { body: { name: 'Shop', redirect_uris: ['https://shop.example.com/cb'] } });
      assert.ok(created.body.client_secret);
      const id = created.body.client_id;
      const listed = await call('getClient', t, { params: { client_id: id } });
      assert.equal(JSON.stringify(listed.body).includes(created.body.client_secret), false);
      const edited = await call('updateClient', t, { params: { client_id: id }, body: { name: 'Shop 2', logo_uri: null } });
      assert.equal(edited.body.name, 'Shop 2');
      const rotated = await call('rotateClientSecret', t, { params: { client_id: id }, body: { grace_seconds: 0 } });
      assert.notEqual(rotated.body.client_secret, created.body.client_secret);
      assert.equal(rotated.body.previous_secret_valid_until, null);
      await call('removeClient', t, { params: { client_id: id } });
      checkProblem(await call('getClient', t, { params: { client_id: id } }), 404, 'client.not_found');
      const rows = await knex()('audit_log').where({ actor_id: full.clientId, target_id: id }).orderBy('seq');
      assert.deepEqual(rows.map((r) => [r.action, r.result]), [
        ['clients.add', 'ok'], ['clients.show', 'ok'], ['clients.update', 'ok'], ['clients.rotate_secret', 'ok'], ['clients.remove', 'ok'], ['clients.show', 'denied'],
      ]);
      assert.equal(JSON.stringify(rows).includes(created.body.client_secret), false, 'no secret in the audit log');
      assert.equal(JSON.stringify(rows).includes(rotated.body.client_secret), false);
    });

    it('lists keys, and refuses to retire one that is still needed (409 problem)', async () => {
      const t = await token(full);
      const keys = await call('listKeys', t);
      const active = keys.body.items.find((k: { state: string; alg: string }) => k.state === 'active' && k.alg === 'RS256');
      checkProblem(await call('retireKey', t, { params: { kid: active.kid } }), 409, 'keys.needed');
    });

    it('exports the audit log as NDJSON and CSV, streamed, and verifies the chain', async () => {
      const t = await token(full);
      const res = await fetch(`${server.url}${API_PREFIX}/audit/export?format=ndjson&actor=client:${full.clientId}`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as { actor_id: string });
      assert.ok(lines.length > 5);
      assert.ok(lines.every((l) => l.actor_id === full.clientId));
      const csv = await fetch(`${server.url}${API_PREFIX}/audit/export?format=csv&action=keys.rotate`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
      assert.match(await csv.text(), /^seq,time,actor_type/);
      checkProblem(await read(await fetch(`${server.url}${API_PREFIX}/audit/export?format=xml`, { headers: { authorization: `Bearer ${t}` } })), 400, 'request.invalid');
      const bad = await read(await fetch(`${server.url}${API_PREFIX}/audit/export?since=yesterday`, { headers: { authorization: `Bearer ${t}` } }));
      checkProblem(bad, 400, 'audit.time_invalid');
      assert.equal(bad.body.field, 'since');
      const verified = await call('verifyAudit', t);
      assert.equal(verified.body.ok, true);
      const exports = (await auditRows(full.clientId)).filter((r) => r.action === 'audit.export').map((r) => r.result);
      assert.deepEqual(exports, ['ok', 'ok', 'denied', 'denied']);
    });
  });

  describe('problem details', () => {
    it('answers 400 for a bad field, an unknown field and malformed JSON, naming the field', async () => {
      const t = await token(full);
      const unknown = await call('inviteUser', t, { body: { email: 'x@example.com', roles: ['admin'] } });
      checkProblem(unknown, 400, 'request.invalid');
      const wrongType = await call('inviteUser', t, { body: { email: 42 } });
      checkProblem(wrongType, 400, 'request.invalid');
      assert.equal(wrongType.body.field, 'email');
      const badEmail = await call('inviteUser', t, { body: { email: 'not an address' } });
      checkProblem(badEmail, 400, 'user.email_invalid');
      assert.equal(badEmail.body.field, 'email');
      const malformed = await read(await fetch(`${server.url}${API_PREFIX}/users`, {
        method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{"email": ',
      }));
      checkProblem(malformed, 400, 'request.invalid_json');
      const badQuery = await call('searchUsers', t, { query: 'status=gone' });
      checkProblem(badQuery, 400, 'request.invalid');
      assert.equal(badQuery.body.field, 'status');
      checkProblem(await call('searchUsers', t, { query: 'sort=email' }), 400, 'request.invalid');
    });

    it('answers 400, audited, for a NUL character in a path, a query or a body, and for a time before year 1 (never a 500)', async () => {
      const t = await token(full);
      const inPath = await call('disableUser', t, { params: { id: 'a\u0000b' } });
      checkProblem(inPath, 400, 'request.nul_character');
      checkProblem(await call('getClient', t, { params: { client_id: '\u0000' } }), 400, 'request.nul_character');
      checkProblem(await call('searchUsers', t, { query: 'query=%00' }), 400, 'request.nul_character');
      checkProblem(await call('listAudit', t, { query: 'actor=user:%00' }), 400, 'request.nul_character');
      checkProblem(await call('inviteUser', t, { body: { email: 'nul@example.com', name: 'a\u0000b' } }), 400, 'request.nul_character');
      assert.equal(await services().store.users.findByEmail('nul@example.com'), undefined);
      const ancient = await call('listAudit', t, { query: 'since=0000-01-01' });
      checkProblem(ancient, 400, 'audit.time_invalid');
      assert.equal(ancient.body.field, 'since');
      const exported = await read(await fetch(`${server.url}${API_PREFIX}/audit/export?since=0000-01-01`, { headers: { authorization: `Bearer ${t}` } }));
      checkProblem(exported, 400, 'audit.time_invalid');
    });

    it('answers 401 without a token, with the Bearer challenge', async () => {
      const none = await call('searchUsers', undefined);
      checkProblem(none, 401, 'token.missing');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
      const junk = await call('searchUsers', 'not-a-jwt');
      checkProblem(junk, 401, 'token.invalid');
      assert.match(junk.headers.get('www-authenticate') ?? '', /^Bearer .*error="invalid_token"/);
    });

    it('answers 404 under /admin/api for an unknown route and an unknown user, 405 for a known path with another method', async () => {
      const t = await token(full);
      for (const path of ['/admin/api/v1/nothing', '/admin/api/v2/users', '/admin/api', '/admin/api/', '/admin/api/v1/users/x/y/z']) {
        const answer = await read(await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${t}` } }));
        checkProblem(answer, 404, 'not_found');
        assert.equal(answer.headers.get('cache-control'), 'no-store');
      }
      checkProblem(await call('getUser', t, { params: { id: 'nobody@example.com' } }), 404, 'user.not_found');
      const put = await read(await fetch(`${server.url}${API_PREFIX}/users`, { method: 'PUT', headers: { authorization: `Bearer ${t}` } }));
      checkProblem(put, 405, 'request.method_not_allowed');
      assert.equal(put.headers.get('allow'), 'HEAD, GET, POST');
    });

    it('answers 415 for a body that is not JSON and 413 for one too large', async () => {
      const t = await token(full);
      const form = await read(await fetch(`${server.url}${API_PREFIX}/users`, {
        method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40example.com',
      }));
      checkProblem(form, 415, 'request.unsupported_media_type');
      const large = await read(await fetch(`${server.url}${API_PREFIX}/users`, {
        method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'a@example.com', name: 'x'.repeat(70_000) }),
      }));
      checkProblem(large, 413, 'request.too_large');
    });
  });
});
