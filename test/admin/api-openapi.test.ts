/**
 * The admin API's OpenAPI 3.1 document: served without a token, valid (checked offline against the
 * official schemas, every $ref resolving), and made from the same table as the router, so that a route of
 * the router missing from the document, or a documented route the router does not answer, fails here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { apiRouter } from '../../src/admin/api/routes.ts';
import { API_PREFIX } from '../../src/admin/api/table.ts';
import { ADMIN_API_SCOPES } from '../../src/oidc/admin-api.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

type Operation = {
  operationId: string; security: Record<string, string[]>[]; parameters?: { name: string; in: string; required: boolean }[];
  requestBody?: { content: Record<string, { schema: { additionalProperties?: boolean; $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
};
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, { additionalProperties?: boolean }>; securitySchemes: Record<string, any> } };

describe('the admin API\'s OpenAPI document', () => {
  let server: TestServer;
  let doc: Doc;

  before(async () => {
    server = await startTestServer();
    const res = await fetch(`${server.url}${API_PREFIX}/openapi.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    doc = (await res.json()) as Doc;
  });
  after(() => server.stop());

  it('is a valid OpenAPI 3.1 document whose every $ref resolves', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const validator = new Validator();
    // The validator resolves the $refs in place: it gets a copy.
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.doesNotThrow(() => validator.resolveRefs());
    for (const ref of JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) assert.ok(doc.components.schemas[ref[1]!], ref[1]);
  });

  it('has every route of the router, and the router every route it documents', () => {
    const routed = apiRouter(server.server.services).stack
      .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m.toLowerCase()} ${String(layer.path).slice(API_PREFIX.length).replace(/:(\w+)/g, '{$1}')}`))
      .sort();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).sort();
    assert.ok(routed.length >= 25, `${routed.length} routes`);
    assert.deepEqual(documented, routed);
  });

  it('answers every documented route (a 401 problem without a token, never 404 or 405), and the document itself without one', async () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const url = `${server.url}${API_PREFIX}${path.replace(/\{\w+\}/g, 'x')}`;
        const res = await fetch(url, { method: method.toUpperCase() });
        const expected = path === '/openapi.json' ? 200 : 401;
        assert.equal(res.status, expected, `${method} ${path}`);
        if (expected === 401) assert.equal(res.headers.get('content-type'), 'application/problem+json');
        await res.arrayBuffer();
      }
    }
  });

  it('names for each operation the OAuth2 scopes that allow it, its parameters, a body that refuses unknown fields, and problem details for errors', () => {
    const scheme = doc.components.securitySchemes.adminApi;
    assert.equal(scheme.type, 'oauth2');
    assert.equal(scheme.flows.clientCredentials.tokenUrl, `${server.url}/token`);
    assert.deepEqual(Object.keys(scheme.flows.clientCredentials.scopes).sort(), [...ADMIN_API_SCOPES].sort());
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path === '/openapi.json') continue;
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        const scopes = op.security[0]?.adminApi;
        assert.ok(scopes?.length && scopes.every((s) => (ADMIN_API_SCOPES as readonly string[]).includes(s)), where);
        for (const name of path.match(/\{(\w+)\}/g) ?? []) {
          assert.ok(op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === name && p.required), `${where}: ${name}`);
        }
        if (op.requestBody) {
          const schema = op.requestBody.content['application/json']!.schema;
          const resolved = schema.$ref ? doc.components.schemas[schema.$ref.split('/').at(-1)!]! : schema;
          assert.equal(resolved.additionalProperties, false, `${where}: unknown fields refused`);
        }
        for (const code of ['400', '401', '403', 'default']) {
          assert.deepEqual(op.responses[code]?.content?.['application/problem+json']?.schema, { $ref: '#/components/schemas/Problem' }, `${where} ${code}`);
        }
      }
    }
    if (doc.paths['/users']?.get) assert.ok(doc.paths['/users'].get.parameters?.some((p) => p.name === 'cursor' && p.in === 'query'));
  });
});
