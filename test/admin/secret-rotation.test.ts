/**
 * Rotating a client secret with a grace period (`rotateClientSecret`, `latchkey clients rotate-secret`):
 * the new secret is shown once; the old one keeps working until the grace ends, then gets invalid_client,
 * on every instance; neither secret reaches the audit log, the security events or the log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oidc from 'openid-client';
import { runCommand, type CommandResult } from '../../src/admin/commands.ts';
import { OperationError, type Actor } from '../../src/admin/operations/actor.ts';
import { DEFAULT_GRACE_SECONDS, rotateClientSecret } from '../../src/admin/operations/clients.ts';
import type { RegisteredClient } from '../../src/oidc/clients.ts';
import { CLIENT_CHANGES } from '../../src/store/clients.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { postAsClient, sleep } from '../helpers/oauth.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const cli: Actor = { via: 'cli', requestId: 'req-secret-rotation' };
const consoleActor = (userId: string, roles: ('admin' | 'helpdesk' | 'auditor')[]): Actor => ({ via: 'console', userId, roles, ip: '198.51.100.40', userAgent: 'Console browser' });
const refusal = (p: Promise<unknown>): Promise<OperationError> => p.then(() => assert.fail('accepted'), (err: unknown) => err as OperationError);

describe('rotating a client secret with a grace period', () => {
  let a: TestServer;
  /** A second instance on the same PostgreSQL database. */
  let b: TestServer | undefined;
  const services = () => a.server.services;
  const knex = () => services().database.knex;
  const instances = () => [a, ...(b ? [b] : [])];
  const run = (...argv: string[]): Promise<CommandResult> => runCommand(argv, services(), { stdin: async () => '' });
  /** Every secret this suite has seen: none may be written anywhere but the clients table, sealed. */
  const secrets: string[] = [];

  /** A client-credentials token request at instance `at`, the secret in the Authorization header (basic) or the body (post). */
  async function tokenAt(at: TestServer, clientId: string, secret: string, method: 'basic' | 'post' = 'basic'): Promise<string> {
    const res = method === 'basic'
      ? await postAsClient(`${at.url}/token`, { clientId, clientSecret: secret }, { grant_type: 'client_credentials' })
      : await fetch(`${at.url}/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
      });
    const body = (await res.json()) as { access_token?: string; error?: string };
    return res.ok && body.access_token ? 'token' : `${res.status} ${body.error}`;
  }

  /** openid-client as the app: a client-credentials grant with this secret, through instance `at`. */
  async function openidClientToken(at: TestServer, clientId: string, secret: string): Promise<string> {
    const config = await oidc.discovery(new URL(a.url), clientId, { client_secret: secret }, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    config[oidc.customFetch] = (url, options) => fetch(url.replace(a.url, at.url), options as RequestInit);
    return (await oidc.clientCredentialsGrant(config)).access_token;
  }

  async function worker(name: string, extra: Partial<Parameters<TestServer['addClient']>[0]> = {}): Promise<RegisteredClient> {
    const client = await a.addClient({ name, grantTypes: ['client_credentials'], ...extra });
    secrets.push(client.clientSecret!);
    return client;
  }

  before(async () => {
    a = await startTestServer();
    if (TEST_DATABASE_URL) b = await startTestServer({ db: a.db, config: { issuer: a.url } });
  });
  after(async () => {
    await b?.stop();
    await a.stop();
  });

  it(`during the grace both secrets get a client-credentials token; after it the old one gets invalid_client and the new one works (${TEST_DATABASE_URL ? 'on two instances' : 'one instance: the second needs PostgreSQL'})`, async () => {
    const client = await worker('Nightly job');
    const old = client.clientSecret!;
    for (const at of instances()) assert.ok(await openidClientToken(at, client.clientId, old));

    const rotated = await rotateClientSecret(services(), cli, client.clientId, { graceSeconds: 3 });
    secrets.push(rotated.clientSecret);
    assert.notEqual(rotated.clientSecret, old);
    assert.match(rotated.clientSecret, /^[A-Za-z0-9_-]{43}$/);
    const until = rotated.previousValidUntil!.getTime();
    assert.ok(Math.abs(until - (Date.now() + 3000)) < 1000, 'the grace ends three seconds from now');

    for (const at of instances()) {
      // Another instance hears of the rotation when it is committed, a moment later.
      const end = Date.now() + 2000;
      while ((await tokenAt(at, client.clientId, rotated.clientSecret)) !== 'token') {
        if (Date.now() > end) assert.fail(`${at.url} did not take the new secret within 2 s`);
        await sleep(25);
      }
      assert.ok(await openidClientToken(at, client.clientId, rotated.clientSecret), `${at.url}: the new one works`);
      assert.ok(await openidClientToken(at, client.clientId, old), `${at.url}: the old secret still works during the grace`);
      assert.equal(await tokenAt(at, client.clientId, old, 'post'), 'token', 'client_secret_post too');
      assert.equal(await tokenAt(at, client.clientId, 'a-wrong-secret'), '401 invalid_client', 'and nothing else');
    }

    await sleep(Math.max(0, until - Date.now()) + 50);
    for (const at of instances()) {
      assert.equal(await tokenAt(at, client.clientId, old), '401 invalid_client', `${at.url}: the old secret stopped at the end of the grace`);
      assert.equal(await tokenAt(at, client.clientId, old, 'post'), '401 invalid_client');
      assert.ok(await openidClientToken(at, client.clientId, rotated.clientSecret), `${at.url}: the new secret works`);
    }
  });

  it('keeps the grace in the database: 24 hours by default, and an expiry moved into the past there ends it', async () => {
    const client = await worker('Reports');
    const rotated = await rotateClientSecret(services(), cli, client.clientId);
    secrets.push(rotated.clientSecret);
    assert.ok(Math.abs(rotated.previousValidUntil!.getTime() - (Date.now() + DEFAULT_GRACE_SECONDS * 1000)) < 5000, 'a day by default');
    assert.equal(await tokenAt(a, client.clientId, client.clientSecret!), 'token');
    // As if a day had passed: SQL behind the store's back, announced as the store announces its writes (a
    // server that missed it would reuse its lookup for 5 s at most).
    await knex()('clients').where({ client_id: client.clientId }).update({ previous_secret_expires_at: knex().raw(`now() - interval '1 second'`) });
    await knex().raw('select pg_notify(?, ?)', [CLIENT_CHANGES, client.clientId]);
    await sleep(200);
    assert.equal(await tokenAt(a, client.clientId, client.clientSecret!), '401 invalid_client');
    assert.equal(await tokenAt(a, client.clientId, rotated.clientSecret), 'token');
  });

  it('a grace of 0 stops the old secret at once; a second rotation keeps only the secret it replaces', async () => {
    const client = await worker('Sync');
    const first = await rotateClientSecret(services(), cli, client.clientId, { graceSeconds: 0 });
    secrets.push(first.clientSecret);
    assert.equal(first.previousValidUntil, null);
    assert.equal(await tokenAt(a, client.clientId, client.clientSecret!), '401 invalid_client');
    const second = await rotateClientSecret(services(), cli, client.clientId, { graceSeconds: 600 });
    const third = await rotateClientSecret(services(), cli, client.clientId, { graceSeconds: 600 });
    secrets.push(second.clientSecret, third.clientSecret);
    assert.equal(await tokenAt(a, client.clientId, first.clientSecret), '401 invalid_client', 'two rotations ago: gone');
    assert.equal(await tokenAt(a, client.clientId, second.clientSecret), 'token', 'the one before: in its grace');
    assert.equal(await tokenAt(a, client.clientId, third.clientSecret), 'token');
  });

  it('refuses what it cannot do: a public client, a client_secret_jwt client with a grace (done with 0), a grace out of range, an unknown client', async () => {
    const pub = await a.addClient({ name: 'Phone', public: true, redirectUris: ['http://127.0.0.1:7777/cb'] });
    assert.deepEqual([(await refusal(rotateClientSecret(services(), cli, pub.clientId))).status, (await refusal(rotateClientSecret(services(), cli, pub.clientId))).code], [409, 'client.public']);
    const jwt = await worker('Signed', { authMethod: 'client_secret_jwt' });
    const withGrace = await refusal(rotateClientSecret(services(), cli, jwt.clientId, { graceSeconds: 60 }));
    assert.deepEqual([withGrace.status, withGrace.field], [409, 'grace']);
    assert.match(withGrace.message, /client_secret_jwt: its assertions are signed with the secret itself/);
    const now = await rotateClientSecret(services(), cli, jwt.clientId, { graceSeconds: 0 });
    secrets.push(now.clientSecret);
    const signWith = (secret: string) => oidc.discovery(new URL(a.url), jwt.clientId, {}, oidc.ClientSecretJwt(secret), { execute: [oidc.allowInsecureRequests] });
    assert.ok((await oidc.clientCredentialsGrant(await signWith(now.clientSecret))).access_token, 'the new secret signs');
    await assert.rejects(oidc.clientCredentialsGrant(await signWith(jwt.clientSecret!)), (err: oidc.ResponseBodyError) => err.error === 'invalid_client');
    for (const graceSeconds of [-1, 30 * 86400 + 1, 1.5]) {
      assert.equal((await refusal(rotateClientSecret(services(), cli, jwt.clientId, { graceSeconds }))).code, 'client.grace_invalid');
    }
    assert.equal((await refusal(rotateClientSecret(services(), cli, 'no-such-client'))).status, 404);
  });

  it('is for administrators: a help-desk account and an auditor are refused, the refusal audited, the secret unchanged', async () => {
    const client = await worker('Guarded');
    const seq = Number((await knex()('audit_log').max('seq as seq').first())?.seq ?? 0);
    for (const role of ['helpdesk', 'auditor'] as const) {
      const who = await a.newUser(role);
      await knex()('users').where({ id: who.id }).update({ roles: JSON.stringify([role]) });
      const err = await refusal(rotateClientSecret(services(), consoleActor(who.id, [role]), client.clientId));
      assert.deepEqual([err.status, err.code], [403, 'permission.denied']);
    }
    const rows = await knex()('audit_log').where('seq', '>', seq).orderBy('seq');
    assert.deepEqual(rows.map((r) => [r.action, r.result, r.target_id]), [['clients.rotate_secret', 'denied', client.clientId], ['clients.rotate_secret', 'denied', client.clientId]]);
    assert.equal(await tokenAt(a, client.clientId, client.clientSecret!), 'token');
    assert.equal((await services().store.clients.find(client.clientId))?.previousSecret, undefined);
  });

  it('latchkey clients rotate-secret prints the new secret once and when the old one stops; --json; --grace is read as a duration', async () => {
    const client = await worker('Billing');
    const text = await run('clients', 'rotate-secret', client.clientId, '--grace', '2h');
    assert.equal(text.code, 0, text.stderr);
    const secret = /^client_secret: (\S+)$/m.exec(text.stdout)?.[1];
    assert.ok(secret);
    secrets.push(secret);
    assert.match(text.stdout, new RegExp(`^client_id: +${client.clientId}\nclient_secret: ${secret}\nStore the secret now: it is not shown again\\.\nThe old secret keeps working until \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z, then stops\\.\n$`));
    const until = new Date(/until (\S+), then/.exec(text.stdout)![1]!).getTime();
    assert.ok(Math.abs(until - (Date.now() + 2 * 3600 * 1000)) < 5000, '--grace 2h');
    assert.equal(await tokenAt(a, client.clientId, secret), 'token');

    const json = await run('clients', 'rotate-secret', client.clientId, '--grace', '0', '--json');
    const out = JSON.parse(json.stdout) as { client_id: string; client_secret: string; previous_secret_valid_until: string | null };
    secrets.push(out.client_secret);
    assert.deepEqual([out.client_id, out.previous_secret_valid_until], [client.clientId, null]);
    assert.equal(await tokenAt(a, client.clientId, secret), '401 invalid_client', '--grace 0: the old one stopped at once');

    const [tooLong, garbled, help] = await Promise.all([
      run('clients', 'rotate-secret', client.clientId, '--grace', '31d'),
      run('clients', 'rotate-secret', client.clientId, '--grace', '24'),
      run('clients', 'rotate-secret', '--help'),
    ]);
    assert.deepEqual([tooLong.code, tooLong.stderr], [2, 'latchkey: --grace: the grace period is 0 to 2592000 seconds (30 days), in whole seconds\n']);
    assert.deepEqual([garbled.code, garbled.stderr], [2, 'latchkey: --grace: 24 is not a duration: 0, or a number with s, m, h or d (24h, 7d)\n']);
    assert.match(help.stdout, /^Usage: latchkey clients rotate-secret CLIENT_ID/m);
    assert.match(help.stdout, /^ {2}--grace D +how long the old secret keeps working/m);
  });

  it('never writes a secret to the audit log, the security events or the log (the clients table holds them sealed)', async () => {
    assert.ok(secrets.length >= 10);
    const audit = JSON.stringify(await knex()('audit_log').select('*'));
    const events = JSON.stringify(await knex()('security_events').select('*'));
    const clients = JSON.stringify(await knex()('clients').select('*'));
    const logs = instances().map((s) => s.logText()).join('');
    for (const secret of secrets) {
      assert.ok(!audit.includes(secret), 'not in the audit log');
      assert.ok(!events.includes(secret), 'not in the security events');
      assert.ok(!logs.includes(secret), 'not in the log');
      assert.ok(!clients.includes(secret), 'not in the clear in the clients table');
    }
    const rows = await knex()('audit_log').where({ action: 'clients.rotate_secret', result: 'ok' });
    assert.ok(rows.length >= 8);
    for (const r of rows) assert.deepEqual(Object.keys(r.after as object).sort(), ['graceSeconds', 'previousSecretValidUntil']);
  });
});
