/**
 * Who may call the admin REST API: only a bearer JWT the provider issued for the resource <issuer>/admin/api
 * to a client that still exists and is enabled. Each attack is tried and refused with a 401 problem and
 * the Bearer challenge: a token for another resource, an expired one (the provider's own token, re-signed
 * with the provider's real key and its times moved into the past: the control beside it shows that the
 * re-signing alone is accepted), a tampered one, one signed by a foreign key, `alg: none` and an HMAC
 * confusion, another `typ` or issuer, a disabled or deleted client. A key rotated out but still published
 * still verifies. Refusals are audited with what is known, at most AUDITED_REFUSALS_PER_MINUTE per address
 * a minute; no token reaches the log or the audit log.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWTPayload } from 'jose';
import { runCommand } from '../../src/admin/commands.ts';
import { AUDITED_REFUSALS_PER_MINUTE } from '../../src/admin/api/refusals.ts';
import { problemSchema } from '../../src/admin/api/problem.ts';
import { adminApiResource } from '../../src/oidc/admin-api.ts';
import { postAsClient } from '../helpers/oauth.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const OTHER_API = 'https://reports.example.test';

interface ApiClient { clientId: string; clientSecret: string }

describe('admin API authentication', () => {
  let server: TestServer;
  let ops: ApiClient;
  const services = () => server.server.services;
  const knex = () => services().database.knex;
  /** Every token this suite used: none may reach the log or the audit log. */
  const tokens: string[] = [];
  let ipCount = 0;
  /** A fresh client address per test (the server trusts this loopback proxy), so the refusal bound is counted apart. */
  const newIp = () => `203.0.113.${++ipCount}`;

  async function registerApiClient(name: string, scopes: string): Promise<ApiClient> {
    const out = await runCommand(['clients', 'add', '--name', name, '--grant-type', 'client_credentials', '--scope', scopes, '--json'], services(), { stdin: async () => '' });
    assert.equal(out.code, 0, out.stderr);
    const created = JSON.parse(out.stdout) as { client_id: string; client_secret: string };
    return { clientId: created.client_id, clientSecret: created.client_secret };
  }

  async function token(client: ApiClient, scope = 'admin:users.read', resource = adminApiResource(server.config)): Promise<string> {
    const res = await postAsClient(`${server.url}/token`, client, { grant_type: 'client_credentials', resource, scope });
    const body = (await res.json()) as { access_token?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    tokens.push(body.access_token!);
    return body.access_token!;
  }

  /** GET /users with this Authorization value, from `ip`. */
  async function callWith(authorization: string | undefined, ip = newIp()) {
    const res = await fetch(`${server.url}/admin/api/v1/users?limit=1`, {
      headers: { 'x-forwarded-for': ip, ...(authorization ? { authorization } : {}) },
    });
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, type: res.headers.get('content-type'), challenge: res.headers.get('www-authenticate') ?? '', body, requestId: res.headers.get('x-request-id'), ip };
  }

  /** Asserts a 401 problem with the invalid_token challenge, and returns its detail. */
  async function refused(jwt: string, ip?: string): Promise<string> {
    tokens.push(jwt);
    const answer = await callWith(`Bearer ${jwt}`, ip);
    assert.equal(answer.status, 401, JSON.stringify(answer.body));
    assert.equal(answer.type, 'application/problem+json');
    problemSchema.parse(answer.body);
    assert.equal(answer.body.code, 'token.invalid');
    assert.match(answer.challenge, /^Bearer realm="admin-api", error="invalid_token"/);
    return answer.body.detail as string;
  }

  async function accepted(jwt: string): Promise<void> {
    const answer = await callWith(`Bearer ${jwt}`);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }

  /** The provider's own signing key for this token (its private JWK from the store). */
  async function providerKeyOf(jwt: string) {
    const { kid, alg } = decodeProtectedHeader(jwt);
    const key = (await services().store.signingKeys.published()).find((k) => k.kid === kid);
    assert.ok(key, 'the token was signed by a key of the provider');
    return { kid: kid!, alg: alg!, key: await importJWK(key.privateJwk, alg) };
  }

  /** The token's claims, changed, signed again with the provider's real key and the same header. */
  async function resigned(jwt: string, change: (claims: JWTPayload) => JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const { kid, alg, key } = await providerKeyOf(jwt);
    return new SignJWT(change({ ...decodeJwt(jwt) })).setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header }).sign(key);
  }

  before(async () => {
    server = await startTestServer({ config: { proxy: { trusted: ['127.0.0.1', '::1'] }, resources: { [OTHER_API]: { scope: 'reports.read' } } } });
    ops = await registerApiClient('Ops', 'admin:users.read');
  });
  after(() => server.stop());

  it('accepts the provider\'s token, and the same claims signed again with its key (the control for the attacks below)', async () => {
    const t = await token(ops);
    await accepted(t);
    const same = await resigned(t, (c) => c);
    tokens.push(same);
    await accepted(same);
  });

  it('refuses an expired token: the provider\'s own, re-signed with its real key, its times moved into the past', async () => {
    const t = await token(ops);
    const now = Math.floor(Date.now() / 1000);
    const lifetime = server.config.adminApi.tokenSeconds;
    assert.equal(lifetime, 300, 'the shipped token lifetime: 5 minutes');
    const expired = await resigned(t, (c) => ({ ...c, iat: now - lifetime - 60, exp: now - 60 }));
    assert.match(await refused(expired), /expired/);
    // Within the clock tolerance it still passes; a token older than the configured lifetime does not, whatever its exp.
    await accepted(await resigned(t, (c) => ({ ...c, iat: now - lifetime + 2, exp: now + 2 })));
    assert.match(await refused(await resigned(t, (c) => ({ ...c, iat: now - lifetime - 60, exp: now + 600 }))), /expired/);
    assert.match(await refused(await resigned(t, (c) => ({ ...c, nbf: now + 120 }))), /nbf/);
  });

  it('refuses a token the provider issued for another resource', async () => {
    const reporter = await registerApiClient('Reports and users', 'admin:users.read reports.read');
    const other = await token(reporter, 'reports.read', OTHER_API);
    assert.equal(decodeJwt(other).aud, OTHER_API);
    assert.match(await refused(other), /aud/);
    // And one with the API among several audiences.
    assert.match(await refused(await resigned(other, (c) => ({ ...c, aud: [OTHER_API, adminApiResource(server.config)], scope: 'admin:users.read' }))), /aud/);
  });

  it('refuses a tampered token, a foreign key, alg none, an HMAC signed with the public key, another typ and another issuer', async () => {
    const t = await token(ops);
    const [h, p, s] = t.split('.') as [string, string, string];
    const claims = { ...decodeJwt(t), scope: 'admin:users.read admin:keys' };
    assert.match(await refused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`), /signature/);

    const { kid, alg } = decodeProtectedHeader(t);
    const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    assert.match(await refused(await new SignJWT(decodeJwt(t)).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).sign(foreign)), /signature|key/);

    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid })).toString('base64url')}.${p}.`;
    await refused(none);

    const publicJwk = (await services().store.signingKeys.list()).find((k) => k.kid === kid)!.publicJwk;
    const hmac = await new SignJWT(decodeJwt(t)).setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' }).sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
    assert.match(await refused(hmac), /algorithm/);

    assert.equal(alg, 'ES256');
    await refused(await resigned(t, (c) => c, { typ: 'JWT' }));
    assert.match(await refused(await resigned(t, (c) => ({ ...c, iss: 'https://evil.example.test' }))), /iss/);
    assert.match(await refused(await resigned(t, (c) => ({ ...c, client_id: undefined }))), /client_id/);
  });

  it('refuses the token of a disabled client (and takes it again once enabled), and of a deleted one', async () => {
    const doomed = await registerApiClient('Doomed', 'admin:users.read');
    const t = await token(doomed);
    await accepted(t);
    assert.equal((await runCommand(['clients', 'disable', doomed.clientId], services(), { stdin: async () => '' })).code, 0);
    const ip = newIp();
    assert.match(await refused(t, ip), /disabled/);
    // The token held: the refusal's row names its client.
    const [row] = await knex()('audit_log').where({ action: 'api.authenticate', ip });
    assert.deepEqual([row?.actor_type, row?.actor_id, row?.result], ['client', doomed.clientId, 'denied']);
    assert.equal((await runCommand(['clients', 'enable', doomed.clientId], services(), { stdin: async () => '' })).code, 0);
    await accepted(t);
    assert.equal((await runCommand(['clients', 'remove', doomed.clientId], services(), { stdin: async () => '' })).code, 0);
    assert.match(await refused(t), /no longer exists/);
  });

  it('still takes a token signed by a key that was rotated out but is still published', async () => {
    const t = await token(ops);
    const { kid } = decodeProtectedHeader(t);
    assert.equal((await runCommand(['keys', 'rotate', '--alg', 'ES256', '--now'], services(), { stdin: async () => '' })).code, 0);
    assert.equal((await services().store.signingKeys.list()).find((k) => k.kid === kid)?.state, 'retired');
    await accepted(t);
  });

  it('audits refusals with what is known (an unverified client_id marked so), at most the bound per address a minute, then only logs them', async () => {
    const ip = newIp();
    const t = await token(ops);
    const [h, p] = t.split('.') as [string, string];
    const junk = `${h}.${p}.AAAA`;
    const answers = [];
    for (let i = 0; i < AUDITED_REFUSALS_PER_MINUTE + 5; i++) answers.push(await callWith(`Bearer ${junk}`, ip));
    assert.ok(answers.every((a) => a.status === 401));
    const rows = await knex()('audit_log').where({ action: 'api.authenticate', ip }).orderBy('seq');
    assert.equal(rows.length, AUDITED_REFUSALS_PER_MINUTE);
    assert.deepEqual([rows[0].actor_type, rows[0].actor_id, rows[0].result, rows[0].target_id], ['client', null, 'denied', 'GET /users']);
    assert.match(rows[0].reason, new RegExp(`client_id "${ops.clientId}", unverified`));
    assert.match(server.logText(), /admin API request refused \(not audited/);
    // No token at all: its row says so.
    const other = await callWith(undefined);
    const [missing] = await knex()('audit_log').where({ request_id: other.requestId });
    assert.deepEqual([missing?.actor_id, missing?.reason], [null, 'token.missing: Send an access token for this API: Authorization: Bearer <token>.']);
  });

  it('writes no token to the log or the audit log', async () => {
    const log = server.logText();
    const audit = JSON.stringify(await knex()('audit_log').select());
    assert.ok(tokens.length > 10);
    for (const t of tokens) {
      for (const part of t.split('.').filter((x) => x.length > 20)) {
        assert.equal(log.includes(part), false, 'a token part in the log');
        assert.equal(audit.includes(part), false, 'a token part in the audit log');
      }
    }
  });
});
