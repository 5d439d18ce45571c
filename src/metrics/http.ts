/**
 * HTTP metrics: every request counted and timed by method, route template and status class, and
 * `/metrics` on the main port for a scraper holding the configured bearer token.
 *
 * The route label is a template, never the path: the Koa router's matched route where one matched
 * (`/interaction/:uid/verify`), else a fixed list of the paths answered outside the routers (oidc-provider's
 * endpoints, health, assets, the phone app's files); anything else is `other`. So 200 random paths add no
 * series, and no id or user input reaches a label.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Next } from 'koa';
import { Counter, Histogram } from 'prom-client';
import { registry } from './registry.ts';

const httpRequests = new Counter({
  name: 'latchkey_http_requests_total',
  help: 'HTTP requests answered, by method, route template and status class',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [registry],
});

const httpDuration = new Histogram({
  name: 'latchkey_http_request_duration_seconds',
  help: 'Time to answer an HTTP request (up to its last header and the body handed to Node), by method, route template and status class',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [registry],
});

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Paths answered outside the Koa routers: oidc-provider's endpoints (its default routes), health, /metrics. */
const EXACT = new Set([
  '/auth', '/token', '/me', '/jwks', '/token/introspection', '/token/revocation', '/session/end', '/session/end/confirm',
  '/session/end/success', '/backchannel', '/device', '/device/auth', '/request', '/reg', '/challenge',
  '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server',
  '/healthz', '/readyz', '/metrics', '/app', '/favicon.ico', '/robots.txt',
]);

/** Paths with one variable segment after a fixed prefix (oidc-provider's resume routes, a client's registration). */
const ONE_SEGMENT: readonly [prefix: string, template: string][] = [
  ['/auth/', '/auth/:uid'],
  ['/device/', '/device/:uid'],
  ['/reg/', '/reg/:clientId'],
];

/** Static files under a prefix (http/assets.ts, push/app-files.ts): one label each. */
const TREES: readonly [prefix: string, template: string][] = [
  ['/assets/', '/assets/*'],
  ['/app/', '/app/*'],
];

/** The route template of a request: bounded, whatever the path. */
export function routeLabel(ctx: Pick<Context, 'path'> & { _matchedRoute?: unknown }): string {
  const matched = ctx._matchedRoute;
  if (typeof matched === 'string') return matched;
  if (matched instanceof RegExp) return String(matched);
  const path = ctx.path;
  if (EXACT.has(path)) return path;
  for (const [prefix, template] of ONE_SEGMENT) {
    if (path.startsWith(prefix) && path.length > prefix.length && !path.includes('/', prefix.length)) return template;
  }
  for (const [prefix, template] of TREES) if (path.startsWith(prefix)) return template;
  return 'other';
}

const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const statusClass = (status: number) => STATUS_CLASSES[Math.floor(status / 100) - 1] ?? 'other';

/** Counts and times every request; first in the app, so it sees the final status of everything after it. */
export function httpMetrics() {
  return async function measure(ctx: Context, next: Next): Promise<void> {
    const started = performance.now();
    let thrown = false;
    try {
      await next();
    } catch (err) {
      thrown = true;
      throw err;
    } finally {
      const labels = {
        method: METHODS.has(ctx.method) ? ctx.method : 'other',
        route: routeLabel(ctx as Context & { _matchedRoute?: unknown }),
        status: thrown ? '5xx' : statusClass(ctx.respond === false ? ctx.res.statusCode : ctx.status),
      };
      httpRequests.inc(labels);
      httpDuration.observe(labels, (performance.now() - started) / 1000);
    }
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * `/metrics` on the main port, only for `Authorization: Bearer <metrics.token>` (compared in constant
 * time: both sides hashed to the same length first). Without the token: 401, and nothing is rendered.
 * With no token configured it passes every request on: /metrics is then not answered on this port.
 */
export function metricsOnMainPort(token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token);
  return async function metricsEndpoint(ctx: Context, next: Next): Promise<void> {
    if (!expected || ctx.path !== '/metrics') return next();
    const given = /^Bearer[ ]+([\x21-\x7e]{1,512})$/i.exec(ctx.get('authorization'))?.[1];
    ctx.set('Cache-Control', 'no-store');
    if (!given || !timingSafeEqual(digest(given), expected)) {
      ctx.status = 401;
      ctx.set('WWW-Authenticate', 'Bearer realm="metrics"');
      ctx.type = 'text/plain';
      ctx.body = 'a bearer token is needed for /metrics\n';
      return;
    }
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      return;
    }
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  };
}
