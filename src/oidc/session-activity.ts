/**
 * Where and from what browser each session is used: oidc-provider keeps neither, so every successful
 * authorization (a sign-in, an app's silent re-authorization, the account page) records it in
 * `session_activity`. Recording never grants anything and never fails a request.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import { clientIp, normalizeIp, parseCidr } from '../http/ip.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import { requestMeta } from '../http/request-meta.ts';

export function recordSessionActivity(provider: Provider, { config, store, log }: { config: Config; store: Store; log: Logger }): void {
  const matchers = config.proxy.trusted.map((c) => parseCidr(c)!);
  const trusted = (ip: string) => matchers.some((m) => m(ip));
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc.session;
    if (!session?.uid || !session.accountId) return;
    // The same address our own routes see (http/proxy.ts has already dropped untrusted X-Forwarded-For).
    const xff = ctx.req.headers['x-forwarded-for'];
    const ip = clientIp(normalizeIp(ctx.req.socket.remoteAddress ?? ''), Array.isArray(xff) ? xff.join(',') : xff, trusted);
    store.sessions
      .recordActivity({ sessionUid: session.uid, userId: session.accountId, ip, userAgent: requestMeta(ctx).userAgent })
      .catch((err: unknown) => log.warn({ err }, 'recording session activity failed'));
  });
}
