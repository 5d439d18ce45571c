/**
 * Web Push to the phone app (docs/mobile-app-protocol.md, "Push messages"): `web-push` builds the request
 * (RFC 8291 aes128gcm encryption, RFC 8292 VAPID JWT with `exp` at most 24 h), and our own fetch sends it
 * with a timeout (node:http, so the address it connects to is the one checked). An endpoint must be https on a public address (a browser's push service): a
 * subscription is data a device sent us, so without that rule it would make Latchkey fetch whatever
 * internal address it names. The payload never carries a secret: a push grants nothing by itself.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import webpush from 'web-push';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { metrics } from '../metrics/registry.ts';
import type { PushSubscriptionJson } from '../store/push-devices.ts';

/** sent: the push service took it; gone: the subscription is dead (404/410); failed: anything else. */
export type PushOutcome = 'sent' | 'gone' | 'failed';

export interface VapidPair {
  publicKey: string;
  privateKey: string;
}

export interface PushSender {
  send(subscription: PushSubscriptionJson, payload: Record<string, unknown>, opts: { ttlSeconds: number; vapid: VapidPair }): Promise<PushOutcome>;
  /** Whether an endpoint may be stored (https on a public host; anything on loopback only under the test setting). */
  endpointAllowed(endpoint: string): boolean;
}

/** Addresses a push service never has: loopback, private, link-local, carrier-grade NAT, unique local, … */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24],
  ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [['::', 96], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001:db8::', 32], ['2002::', 16],
  ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]] as const) NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');

const isPublicAddress = (address: string) => !NOT_PUBLIC.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** Subscriptions as browsers make them: an https endpoint of sane length, a P-256 key and a 16-byte secret. */
export function subscriptionOf(value: unknown): PushSubscriptionJson | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const { endpoint, keys } = value as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } };
  if (typeof endpoint !== 'string' || endpoint.length > 2048 || !keys || typeof keys !== 'object') return undefined;
  const { p256dh, auth } = keys;
  if (typeof p256dh !== 'string' || !/^[A-Za-z0-9_-]{86,88}={0,2}$/.test(p256dh)) return undefined;
  if (typeof auth !== 'string' || !/^[A-Za-z0-9_-]{22,24}={0,2}$/.test(auth)) return undefined;
  try {
    new URL(endpoint);
  } catch {
    return undefined;
  }
  return { endpoint, keys: { p256dh, auth } };
}

export function createPushSender(config: Config, log: Logger, resolver: typeof dnsLookup = dnsLookup): PushSender {
  const { push } = config.twoStep;
  const contact = push.contact ?? `mailto:${/<([^>]+)>/.exec(config.mail.from)?.[1] ?? config.mail.from}`;

  const endpointAllowed = (endpoint: string): boolean => {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return false;
    }
    if (push.allowInsecureEndpoints) return url.protocol === 'https:' || url.protocol === 'http:';
    if (url.protocol !== 'https:' || url.username || url.password) return false;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return isPublicAddress(host);
    return host.includes('.') && !/(^|\.)(localhost|local|internal|localdomain)$/i.test(host);
  };

  /**
   * Resolves a push service's host for the connection itself, refusing any address that is not public: the
   * check and the connection use the same answer, so a name that changes (DNS rebinding) cannot slip an
   * internal address in between.
   */
  const publicLookup: LookupFunction = (hostname, options, callback) => {
    resolver(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 4);
      const list = addresses as LookupAddress[];
      const refused = push.allowInsecureEndpoints ? undefined : list.find((a) => !isPublicAddress(a.address));
      if (!list.length || refused) return callback(Object.assign(new Error('push service address is not public'), { code: 'ENOTPUBLIC' }), '', 4);
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };

  /** One POST, no redirects, within the timeout: the status, or undefined when it failed. */
  const post = (endpoint: string, headers: Record<string, string | number>, body: Buffer | null): Promise<number | undefined> =>
    new Promise((resolve) => {
      const url = new URL(endpoint);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if (isIP(host) && !push.allowInsecureEndpoints && !isPublicAddress(host)) return resolve(undefined);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method: 'POST', headers, lookup: publicLookup }, (res) => {
        clearTimeout(deadline);
        res.resume();
        resolve(res.statusCode);
      });
      const deadline = setTimeout(() => req.destroy(Object.assign(new Error('push service timed out'), { code: 'ETIMEDOUT' })), push.timeoutMs);
      req.on('error', (err) => {
        clearTimeout(deadline);
        log.warn({ pushService: url.origin, err: (err as NodeJS.ErrnoException).code ?? err.name }, 'push service unreachable');
        resolve(undefined);
      });
      req.end(body ?? undefined);
    });

  return {
    endpointAllowed,
    async send(subscription, payload, { ttlSeconds, vapid }) {
      const origin = (() => {
        try {
          return new URL(subscription.endpoint).origin;
        } catch {
          return 'invalid';
        }
      })();
      if (!endpointAllowed(subscription.endpoint)) {
        log.warn({ pushService: origin }, 'push endpoint refused: not https on a public address');
        metrics.pushAnswered(undefined);
        return 'failed';
      }
      const ttl = Math.max(1, Math.floor(ttlSeconds));
      // The VAPID JWT expires five minutes after the message would (RFC 8292 allows up to 24 h; web-push's default is 12).
      const expiration = Math.floor(Date.now() / 1000) + Math.min(ttl + 300, 86_400);
      const { Authorization } = webpush.getVapidHeaders(new URL(subscription.endpoint).origin, contact, vapid.publicKey, vapid.privateKey, 'aes128gcm', expiration);
      const details = webpush.generateRequestDetails(subscription, JSON.stringify(payload), {
        TTL: ttl, urgency: 'high', contentEncoding: 'aes128gcm', headers: { Authorization },
      });
      const status = await post(details.endpoint, details.headers as Record<string, string | number>, details.body ? Buffer.from(details.body) : null);
      metrics.pushAnswered(status);
      if (status === undefined) return 'failed';
      if (status === 404 || status === 410) return 'gone';
      if (status >= 200 && status < 300) return 'sent';
      log.warn({ pushService: origin, status }, 'push service refused a message');
      return 'failed';
    },
  };
}
