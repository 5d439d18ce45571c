/**
 * Trusted proxies. X-Forwarded-For/-Proto/-Host are believed only from configured proxy addresses; from
 * anyone else they are deleted before any code (ours or oidc-provider's) reads them. The client address is
 * the socket peer, or the first untrusted hop behind trusted proxies.
 */
import type { Context, Next } from 'koa';
import type { Config } from '../config.ts';
import { clientIp, normalizeIp, parseCidr } from './ip.ts';

const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'forwarded', 'x-real-ip'];

export function trustProxies(config: Config) {
  const matchers = config.proxy.trusted.map((c) => parseCidr(c)!);
  const trusted = (ip: string) => matchers.some((m) => m(ip));
  return async function proxy(ctx: Context, next: Next) {
    const peer = normalizeIp(ctx.req.socket.remoteAddress ?? '');
    const headers = ctx.req.headers;
    if (!trusted(peer)) {
      for (const h of FORWARDED) delete headers[h];
    } else if (headers['x-forwarded-proto'] && !/^https?$/.test(String(headers['x-forwarded-proto']).split(',')[0]!.trim())) {
      delete headers['x-forwarded-proto'];
    }
    const xff = headers['x-forwarded-for'];
    ctx.request.ip = clientIp(peer, Array.isArray(xff) ? xff.join(',') : xff, trusted);
    await next();
  };
}
