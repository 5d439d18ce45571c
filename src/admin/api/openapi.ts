/**
 * The admin API's OpenAPI 3.1 document, made from the route table (table.ts) and the very zod schemas the
 * routes validate with (`z.toJSONSchema`: JSON Schema 2020-12, what OpenAPI 3.1 uses). Schemas with an id
 * (`.meta({ id })`) become components; every error is a problem details response.
 */
import { z } from 'zod';
import type { Config } from '../../config.ts';
import { ADMIN_API_SCOPES, adminApiResource, type AdminApiScope } from '../../oidc/admin-api.ts';
import { scopesGranting } from '../operations/permissions.ts';
import { PROBLEM_TYPE, problemSchema } from './problem.ts';
import type { ApiRoute } from './route.ts';
import { API_PREFIX } from './table.ts';

type Json = Record<string, unknown>;

const SCOPE_TEXT: { readonly [S in AdminApiScope]: string } = {
  'admin:users.read': 'Read users, their methods, sessions and activity',
  'admin:users.write': 'Read and change users (invite, reset link, disable, enable, unlock, delete, sessions, help-desk reset); never an account that holds a console role, never roles',
  'admin:clients': 'Read and change clients, rotate their secrets',
  'admin:keys': 'Read, rotate and retire signing keys',
  'admin:audit.read': 'Read, export and verify the audit log',
};

/** Turns zod schemas into the document's JSON Schemas, gathering those with an id into `components.schemas`. */
function schemaConverter(components: Json) {
  const hoist = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(hoist);
    if (!node || typeof node !== 'object') return node;
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === '$schema') continue;
      if (key === '$defs') {
        for (const [id, def] of Object.entries(value as Json)) components[id] ??= hoist(def);
        continue;
      }
      out[key] = key === '$ref' && typeof value === 'string' ? value.replace('#/$defs/', '#/components/schemas/') : hoist(value);
    }
    return out;
  };
  return (schema: z.ZodType, io: 'input' | 'output') => hoist(z.toJSONSchema(schema, { io, unrepresentable: 'any' })) as Json;
}

const problemResponse = (description: string) => ({ description, content: { [PROBLEM_TYPE]: { schema: { $ref: '#/components/schemas/Problem' } } } });

function parameters(route: ApiRoute, convert: ReturnType<typeof schemaConverter>): Json[] {
  const of = (where: 'path' | 'query', shape: z.ZodObject | undefined) => Object.entries(shape?.shape ?? {}).map(([name, schema]) => {
    const s = schema as z.ZodType;
    return { name, in: where, required: where === 'path' || !s.safeParse(undefined).success, schema: convert(s, 'input'), ...(s.description ? { description: s.description } : {}) };
  });
  return [...of('path', route.params), ...of('query', route.query)];
}

function operation(route: ApiRoute, convert: ReturnType<typeof schemaConverter>): Json {
  const success = route.status === 204
    ? { description: 'Done; nothing to answer' }
    : route.stream
      ? { description: 'The rows, streamed', content: Object.fromEntries(route.stream.map((type) => [type, { schema: { type: 'string' } }])) }
      : { description: 'OK', content: { 'application/json': { schema: convert(route.response!, 'output') } } };
  const params = parameters(route, convert);
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security: [{ adminApi: scopesGranting(route.permission) }],
    ...(params.length ? { parameters: params } : {}),
    ...(route.body ? {
      requestBody: { required: !route.body.safeParse(undefined).success, content: { 'application/json': { schema: convert(route.body, 'input') } } },
    } : {}),
    responses: {
      [String(route.status)]: success,
      400: problemResponse('The request is not valid (a field, a parameter, malformed JSON)'),
      401: problemResponse('No access token, or one that is expired, not for this API, or of a disabled client'),
      403: problemResponse('The token\'s scopes do not allow this, or the target is out of an API client\'s reach'),
      default: problemResponse('Any other error, as problem details'),
    },
  };
}

export function openApiDocument(config: Pick<Config, 'issuer' | 'productName'>, routes: readonly ApiRoute[]): Json {
  const schemas: Json = {};
  const convert = schemaConverter(schemas);
  schemas.Problem = convert(problemSchema, 'output');
  const paths: Record<string, Json> = {
    '/openapi.json': {
      get: {
        operationId: 'openApiDocument', summary: 'This document', tags: ['meta'], security: [],
        responses: { 200: { description: 'The OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } }, default: problemResponse('An error') },
      },
    },
  };
  for (const route of routes) (paths[route.path] ??= {})[route.method] = operation(route, convert);
  return {
    openapi: '3.1.0',
    info: {
      title: `${config.productName} admin API`,
      version: '1',
      description: 'Administration over the same operations as the console and the CLI. Every call is audited with the client as the actor.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: `${config.issuer}${API_PREFIX}` }],
    tags: [{ name: 'users' }, { name: 'clients' }, { name: 'keys' }, { name: 'audit' }, { name: 'meta' }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        adminApi: {
          type: 'oauth2',
          description: `Client-credentials access tokens for the resource ${adminApiResource(config)} (send resource=${adminApiResource(config)} with the token request)`,
          flows: { clientCredentials: { tokenUrl: `${config.issuer}/token`, scopes: Object.fromEntries(ADMIN_API_SCOPES.map((s) => [s, SCOPE_TEXT[s]])) } },
        },
      },
    },
  };
}
