/**
 * One route of the admin API, declared once: method, path, what it needs (a permission, which the token's
 * scopes must give), its schemas (path and query parameters, JSON body, response) and its handler over an
 * operation. The router (routes.ts) and the OpenAPI document (openapi.ts) are both made from the list of
 * these (table.ts), so they cannot drift apart.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { Services } from '../../services.ts';
import type { ApiActor } from '../operations/actor.ts';
import type { Permission } from '../operations/permissions.ts';

export type Method = 'get' | 'post' | 'patch' | 'delete';

type Shape = z.ZodObject;

export interface ApiCall<P extends Shape, Q extends Shape, B extends z.ZodType> {
  services: Services;
  actor: ApiActor;
  params: z.output<P>;
  query: z.output<Q>;
  body: z.output<B>;
  /** For a streamed answer only (the audit export). */
  ctx: Context;
  /** Refuses the call for `err` (a 4xx) found before any operation ran, audited under the route's action. */
  refuse(err: Error): Promise<never>;
}

export interface RouteDef<P extends Shape, Q extends Shape, B extends z.ZodType, R extends z.ZodType> {
  method: Method;
  /** Below /admin/api/v1, in OpenAPI's form: `/users/{id}`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: 'users' | 'clients' | 'keys' | 'audit';
  permission: Permission;
  /** The operation's audit action, for a refusal at the edge (no scope, bad input) to be logged under. */
  action: string;
  params?: P;
  query?: Q;
  body?: B;
  /** 201 for a creation, 204 when nothing is answered. */
  status: 200 | 201 | 204;
  /** The JSON answer (none with 204 or `stream`). */
  response?: R;
  /** A streamed answer instead of JSON: its media types (the handler sets the body). */
  stream?: readonly string[];
  handle(call: ApiCall<P, Q, B>): Promise<z.input<R>>;
}

/** A route with its types erased, as the router and the document take it. */
export type ApiRoute = RouteDef<Shape, Shape, z.ZodType, z.ZodType>;

export function defineRoute<P extends Shape = z.ZodObject<{}>, Q extends Shape = z.ZodObject<{}>, B extends z.ZodType = z.ZodUndefined, R extends z.ZodType = z.ZodVoid>(
  def: RouteDef<P, Q, B, R>,
): ApiRoute {
  return def as unknown as ApiRoute;
}

const ID_CURSOR = /^[A-Za-z0-9_-]{1,500}$/;
const idAfter = (cursor: string) => (ID_CURSOR.test(cursor) ? /^id:(.+)$/s.exec(Buffer.from(cursor, 'base64url').toString('utf8'))?.[1] : undefined);

/** `limit` and `cursor`, the query of every list (the operations that page themselves read the cursor). */
export const pageQuery = {
  limit: z.string().regex(/^\d{1,3}$/, 'limit is a whole number from 1 to 100').refine((v) => Number(v) >= 1 && Number(v) <= 100, 'limit is a whole number from 1 to 100')
    .optional().describe('At most this many items, 1 to 100 (default 50)'),
  cursor: z.string().max(500).optional().describe('The next_cursor of the page before'),
};

/** The same for a list paged here by id (pageById): a cursor it did not give out is refused with the rest of the query. */
export const idPageQuery = {
  ...pageQuery,
  cursor: pageQuery.cursor.refine((c) => c === undefined || idAfter(c) !== undefined, 'cursor is not one this list gave out'),
};

/** `{ items, next_cursor }`: the answer of every list. */
export const pageOf = <T extends z.ZodType>(item: T) => z.strictObject({
  items: z.array(item),
  next_cursor: z.string().nullable().describe('For the next page (the same query with cursor=…); null on the last page'),
});

/**
 * A page of a list the operations give whole (clients, keys, sessions): ordered by id, the cursor the last
 * id of the page before (opaque, base64url). An item added meanwhile never shifts or repeats another.
 */
export function pageById<T>(all: readonly T[], idOf: (item: T) => string, query: { limit?: string | undefined; cursor?: string | undefined }): { items: T[]; next_cursor: string | null } {
  const limit = query.limit === undefined ? 50 : Number(query.limit);
  const after = query.cursor === undefined ? undefined : idAfter(query.cursor);
  const sorted = [...all].sort((a, b) => (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0));
  const rest = after === undefined ? sorted : sorted.filter((item) => idOf(item) > after);
  const items = rest.slice(0, limit);
  return { items, next_cursor: rest.length > limit ? Buffer.from(`id:${idOf(items.at(-1)!)}`, 'utf8').toString('base64url') : null };
}

/** A time as the API writes it: ISO 8601, UTC. */
export const time = z.iso.datetime();
export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
