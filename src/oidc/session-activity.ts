/**
 * Where and from what browser each session is used: oidc-provider keeps neither, so every successful
 * authorization (a sign-in, an app's silent re-authorization, the account page) records it in
 * `session_activity`, in the statement that saves the session when the request saves it. Recording never
 * grants anything and never fails a request.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config.ts';
import { clientIp, normalizeIp, parseCidr } from '../http/ip.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import type { SessionActivity } from '../store/sessions.ts';
import { requestMeta } from '../http/request-meta.ts';
import { deferSessionActivity, takeSessionActivity } from './adapter.ts';

export function recordSessionActivity(provider: Provider, { config, store, log }: { config: Config; store: Store; log: Logger }): void {
  const matchers = config.proxy.trusted.map((c) => parseCidr(c)!);
  const trusted = (ip: string) => matchers.some((m) => m(ip));
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc.session;
    if (!session?.uid || !session.accountId) return;
    // The same address our own routes see (http/proxy.ts has already dropped untrusted X-Forwarded-For).
    const xff = ctx.req.headers['x-forwarded-for'];
    const ip = clientIp(normalizeIp(ctx.req.socket.remoteAddress ?? ''), Array.isArray(xff) ? xff.join(',') : xff, trusted);
    const activity: SessionActivity = { sessionUid: session.uid, userId: session.accountId, ip, userAgent: requestMeta(ctx).userAgent };
    const record = (a: SessionActivity) => store.sessions.recordActivity(a).catch((err: unknown) => log.warn({ err }, 'recording session activity failed'));
    // Stored with the session, which oidc-provider saves at the end of the request (adapter.ts); on its own
    // when the request ends without writing it.
    if (!deferSessionActivity(ctx, activity)) return void record(activity);
    ctx.res.once('close', () => {
      const left = takeSessionActivity(ctx);
      if (left) void record(left);
    });
  });
}
