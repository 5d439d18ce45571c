/**
 * The steps every call of the admin API goes through, in order: the access token (bearer.ts; a refusal
 * is audited within a bound, refusals.ts), the permission the route needs from the token's scopes (a
 * refusal goes through `authorize`, so it is audited with the client as the actor), the path, query and
 * JSON body read into typed values (a refusal audited the same way), then the route's operation, which
 * audits itself, and the answer.
 */
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { parse, readJson, refuseNul } from '../../http/body.ts';
import type { Services } from '../../services.ts';
import type { ApiActor } from '../operations/actor.ts';
import { audited, type AuditTarget } from '../operations/audited.ts';
import { allows, authorize, scopesGranting } from '../operations/permissions.ts';
import { challenge, TokenMissing, TokenRefused, verifyAccessToken } from './bearer.ts';
import { ApiProblem } from './problem.ts';
import { recordRefusal } from './refusals.ts';
import type { ApiRoute } from './route.ts';
import { TARGET_TYPES } from './table.ts';

const NO_BODY = z.strictObject({}).optional();

const hasBody = (ctx: Context) => ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length') || 0) > 0;

async function authenticate(services: Services, ctx: Context, label: string): Promise<ApiActor> {
  const caller = { ip: ctx.ip, userAgent: ctx.get('user-agent') || null, requestId: ctx.state.requestId as string | undefined };
  try {
    const client = await verifyAccessToken(services, ctx.get('authorization') || undefined);
    return { via: 'api', clientId: client.clientId, scopes: client.scopes, ...caller };
  } catch (err) {
    if (err instanceof TokenRefused || err instanceof TokenMissing) await recordRefusal(services, caller, label, err);
    throw err;
  }
}

async function readInput(route: ApiRoute, ctx: Context) {
  // The router's own captures (the edge's `rest`) are not the route's parameters.
  const own = Object.keys(route.params?.shape ?? {});
  const given = Object.fromEntries(Object.entries(ctx.params ?? {}).filter(([name]) => own.includes(name)));
  refuseNul(given, 'The path');
  refuseNul(ctx.query, 'The query');
  const params = parse(route.params ?? z.strictObject({}), given);
  const query = parse(route.query ?? z.strictObject({}), { ...ctx.query });
  const raw = hasBody(ctx) ? await readJson(ctx) : undefined;
  const schema = route.body ?? NO_BODY;
  if (raw === undefined && !schema.safeParse(undefined).success) throw new ApiProblem('request.body_missing', 400, 'Send the request\'s JSON body.');
  return { params, query, body: parse(schema, raw) };
}

/**
 * A token without a scope that gives the route's permission: refused through `authorize`, inside
 * `audited`, so the row names the client; the challenge names the scopes that would do.
 */
async function checkScope(services: Services, actor: ApiActor, route: ApiRoute, target: AuditTarget): Promise<void> {
  if (allows(actor, route.permission)) return;
  try {
    await audited(services, actor, { action: route.action, target }, async () => authorize(actor, route.permission));
  } catch (err) {
    const scopes = scopesGranting(route.permission).join(' ');
    throw new ApiProblem('permission.denied', 403, `${(err as Error).message}: this needs one of the scopes ${scopes}`, undefined, {
      'WWW-Authenticate': challenge('insufficient_scope', `this needs one of the scopes ${scopes}`, scopes),
    });
  }
}

/** The Koa middleware that answers `route`. */
export function runRoute(services: Services, route: ApiRoute) {
  const label = `${route.method.toUpperCase()} ${route.path}`;
  return async function call(ctx: Context): Promise<void> {
    const actor = await authenticate(services, ctx, label);
    const named: string | undefined = ctx.params?.id ?? ctx.params?.client_id ?? ctx.params?.kid;
    // Before the path is validated, an overlong name (or one with a NUL) is left out of the row rather than stored.
    const target: AuditTarget = { type: TARGET_TYPES[route.tag], id: named && named.length <= 320 && !named.includes('\0') ? named : undefined };
    /** A refusal before the operation ran (bad input): audited under the route's action, then answered. */
    const refuse = (err: Error): Promise<never> => audited(services, actor, { action: route.action, target }, () => Promise.reject(err));
    await checkScope(services, actor, route, target);
    const input = await readInput(route, ctx).catch((err: unknown) => (err instanceof AppError && err.status < 500 ? refuse(err) : Promise.reject(err)));
    const result = await route.handle({ services, actor, ...input, ctx, refuse });
    if (route.stream) return;
    ctx.status = route.status;
    ctx.body = route.status === 204 ? null : result;
  };
}
