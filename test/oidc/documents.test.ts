/**
 * Discovery and the JWKS served from bytes rendered once per provider instance (oidc/documents.ts): the
 * answer is oidc-provider's own, byte for byte and header by header, for GET and HEAD and for each origin;
 * whatever is unusual still reaches oidc-provider; and a key rotation, or a retired key's deletion, shows
 * in what every instance serves within `keys.refreshSeconds`.
 */
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import type Provider from 'oidc-provider';
import { runCommand } from '../../src/admin/commands.ts';
import { cachedDocuments } from '../../src/oidc/documents.ts';
import { TEST_DATABASE_URL } from '../helpers/db.ts';
import { sleep } from '../helpers/oauth.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const DISCOVERY = '/.well-known/openid-configuration';
const DOCUMENTS = [DISCOVERY, '/.well-known/oauth-authorization-server', '/jwks'];
/** Headers of the connection, not of the answer. */
const TRANSPORT = new Set(['date', 'connection', 'keep-alive']);

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
}

/** A request with the path exactly as given and any Host header (fetch can do neither). */
function request(base: string, path: string, opts: RequestOptions = {}): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const headers = { 'x-request-id': 'documents-test-1', ...opts.headers };
    const req = http.request({ hostname, port, path, method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const headers = Object.fromEntries(Object.entries(res.headers).filter(([name]) => !TRANSPORT.has(name)));
        resolve({ status: res.statusCode!, headers, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function assertSameAnswer(actual: Answer, expected: Answer, what: string) {
  assert.equal(actual.status, expected.status, `${what}: status`);
  assert.deepEqual(actual.headers, expected.headers, `${what}: headers`);
  assert.ok(actual.body.equals(expected.body), `${what}: body bytes`);
}

async function listen(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** oidc-provider alone, as app.ts hands it a request. */
const callbackOf = (provider: Provider) => provider.callback() as unknown as (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

describe('discovery and the JWKS as rendered bytes', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answers through the app exactly as oidc-provider does behind the same middleware (a query sends the request on to it)', async () => {
    for (const path of DOCUMENTS) {
      for (const method of ['GET', 'HEAD']) {
        for (let i = 0; i < 2; i++) {
          const kept = await request(server.url, path, { method });
          const fromProvider = await request(server.url, `${path}?from=oidc-provider`, { method });
          assert.equal(kept.status, 200);
          assertSameAnswer(kept, fromProvider, `${method} ${path} #${i + 1}`);
        }
      }
    }
    const meta = JSON.parse((await request(server.url, DISCOVERY)).body.toString('utf8')) as Record<string, unknown>;
    assert.equal(meta.jwks_uri, `${server.url}/jwks`);
    assert.equal(meta.backchannel_user_code_parameter_supported, false, 'with what Latchkey changes in oidc-provider\'s answer (oidc/ciba.ts)');
  });

  describe('in front of oidc-provider', () => {
    let provider: Provider;
    /** The requests that went on to oidc-provider. */
    const reached: string[] = [];
    let cached: Awaited<ReturnType<typeof listen>>;
    let direct: Awaited<ReturnType<typeof listen>>;

    before(async () => {
      provider = server.server.app.providers.current();
      const koa = new Koa({ proxy: true });
      koa.use(cachedDocuments(() => provider)).use(async (ctx) => {
        reached.push(`${ctx.method} ${ctx.url}`);
        ctx.respond = false;
        await callbackOf(provider)(ctx.req, ctx.res);
      });
      cached = await listen(koa.callback());
      direct = await listen(callbackOf(provider));
    });
    after(async () => {
      await cached.close();
      await direct.close();
    });

    /** The same request (Host included) to oidc-provider alone and through the cache: the same answer, and whether it went on. */
    async function compare(path: string, opts: RequestOptions = {}) {
      const before = reached.length;
      const same = { ...opts, headers: { host: new URL(server.url).host, ...opts.headers } };
      const expected = await request(direct.url, path, same);
      const actual = await request(cached.url, path, same);
      assertSameAnswer(actual, expected, `${opts.method ?? 'GET'} ${path} ${JSON.stringify(opts.headers ?? {})}`);
      return { answer: actual, wentOn: reached.length > before };
    }

    it('answers a plain GET or HEAD of each document itself, from the first request on, byte for byte as oidc-provider', async () => {
      for (const path of DOCUMENTS) {
        for (const method of ['GET', 'HEAD', 'GET']) {
          const { answer, wentOn } = await compare(path, { method });
          assert.equal(answer.status, 200);
          assert.equal(wentOn, false, `${method} ${path} is answered from the kept bytes`);
        }
      }
    });

    it('names the endpoints on the origin the request came to, as oidc-provider does', async () => {
      const origins: [Record<string, string>, string][] = [
        [{ host: 'idp.example:8443', 'x-forwarded-proto': 'https' }, 'https://idp.example:8443'],
        [{ host: 'internal:3000', 'x-forwarded-host': 'login.example' }, 'http://login.example'],
        [{ host: 'idp.example:8443' }, 'http://idp.example:8443'],
      ];
      for (const [headers, origin] of origins) {
        const { answer, wentOn } = await compare(DISCOVERY, { headers });
        assert.equal(wentOn, false);
        assert.equal((JSON.parse(answer.body.toString('utf8')) as { token_endpoint: string }).token_endpoint, `${origin}/token`);
      }
    });

    it('sends everything else on to oidc-provider: a query, another path or method, a CORS request, a preflight', async () => {
      const cases: [string, RequestOptions][] = [
        ['/jwks?', {}],
        ['/jwks?x=1', {}],
        [`${DISCOVERY}?x=1`, { method: 'HEAD' }],
        ['/jwks/', {}],
        ['/JWKS', {}],
        ['/jwks', { method: 'POST' }],
        ['/jwks', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } }],
        ['/jwks', { headers: { origin: 'https://app.example' } }],
        [DISCOVERY, { headers: { origin: 'https://app.example' } }],
        ['/.well-known/unknown', {}],
      ];
      for (const [path, opts] of cases) {
        const { wentOn } = await compare(path, opts);
        assert.equal(wentOn, true, `${opts.method ?? 'GET'} ${path} ${JSON.stringify(opts.headers ?? {})} reaches oidc-provider`);
      }
    });

    it('keeps a bounded number of answers: past it, made-up Host headers reach oidc-provider, and every answer is still its own', async () => {
      let wentOn = 0;
      for (let i = 0; i < 40; i++) {
        const host = `made-up-${i}.example`;
        const { answer, wentOn: on } = await compare(DISCOVERY, { headers: { host } });
        assert.equal((JSON.parse(answer.body.toString('utf8')) as { token_endpoint: string }).token_endpoint, `http://${host}/token`);
        if (on) wentOn++;
      }
      assert.ok(wentOn > 0 && wentOn < 40, `${wentOn} of 40 made-up hosts reached oidc-provider`);
      assert.equal((await compare('/jwks')).wentOn, false, 'what was kept is still answered');
    });
  });
});

// A second instance exists on PostgreSQL only (the embedded database belongs to one process); there the
// change is made on one instance and read on the other, otherwise on the same one.
describe('after a key rotation and a retired key\'s deletion', () => {
  const refreshSeconds = 1;
  let a: TestServer;
  let b: TestServer;
  const store = () => a.server.services.store;
  const knex = () => a.server.services.database.knex;
  const kidsOf = (answer: Answer) => (JSON.parse(answer.body.toString('utf8')) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();

  before(async () => {
    a = await startTestServer({ config: { keys: { refreshSeconds } } });
    b = TEST_DATABASE_URL ? await startTestServer({ db: a.db, config: { issuer: a.url, keys: { refreshSeconds } } }) : a;
  });
  after(async () => {
    if (b !== a) await b.stop();
    await a.stop();
  });

  /** Polls B's kept JWKS until `check` holds; fails past refreshSeconds and a margin for the refresh's own queries. */
  async function servedUntil(check: (kids: string[]) => boolean, what: string): Promise<number> {
    const started = Date.now();
    for (;;) {
      if (check(kidsOf(await request(b.url, '/jwks')))) return Date.now() - started;
      if (Date.now() - started > refreshSeconds * 1000 + 1500) assert.fail(`not within ${refreshSeconds} s: ${what}`);
      await sleep(50);
    }
  }

  /** What B keeps is what oidc-provider on B says now, for both documents. */
  async function assertServedIsProviders() {
    for (const path of [DISCOVERY, '/jwks']) {
      assertSameAnswer(await request(b.url, path), await request(b.url, `${path}?from=oidc-provider`), path);
    }
  }

  it('serves the new key set within keys.refreshSeconds of `latchkey keys rotate`, before the new keys sign; the old keys still published after', async () => {
    const old = kidsOf(await request(b.url, '/jwks'));
    await request(b.url, DISCOVERY);
    const rotated = await runCommand(['keys', 'rotate'], a.server.services, { stdin: async () => '' });
    assert.equal(rotated.code, 0, rotated.stderr);
    const rotatedAt = Date.now();
    const next = (await store().signingKeys.list()).filter((k) => k.state === 'next').map((k) => k.kid);
    assert.equal(next.length, 3, 'every algorithm has a new key, not signing yet');
    await servedUntil((kids) => next.every((kid) => kids.includes(kid)), 'the new keys are served');
    assert.deepEqual(kidsOf(await request(b.url, '/jwks')), [...old, ...next].sort());
    await assertServedIsProviders();

    // Two refreshes later one instance promotes them; the rotated-out keys stay for the tokens they signed.
    for (;;) {
      const active = (await store().signingKeys.list()).filter((k) => k.state === 'active').map((k) => k.kid);
      if (active.length === 3 && active.every((kid) => next.includes(kid))) break;
      assert.ok(Date.now() - rotatedAt < 3 * refreshSeconds * 1000 + 1500, 'the new keys sign within two refreshes and the one that promotes them');
      await sleep(100);
    }
    await servedUntil((kids) => kids.length === 6, 'the promoted key set is served');
    assert.deepEqual(kidsOf(await request(b.url, '/jwks')), [...old, ...next].sort(), 'the rotated-out keys stay for the tokens they signed');
    await assertServedIsProviders();
  });

  it('stops serving a retired key once it is deleted', async () => {
    const retired = (await store().signingKeys.list()).filter((k) => k.state === 'retired').map((k) => k.kid);
    assert.equal(retired.length, 3);
    await knex()('signing_keys').whereIn('kid', retired).update({ expires_at: knex().raw(`now() - interval '1 second'`) });
    assert.equal(await store().signingKeys.purge(), 3);
    await servedUntil((kids) => !kids.some((kid) => retired.includes(kid)), 'the deleted keys are gone');
    assert.equal(kidsOf(await request(b.url, '/jwks')).length, 3);
    await assertServedIsProviders();
  });
});
