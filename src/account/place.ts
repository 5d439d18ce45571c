/**
 * An approximate place for a session: its IP address with the host part masked ("203.0.113.x", for IPv6
 * the first four groups). Where on a map comes later (GeoIP); until then the place is "location unknown".
 */
import net from 'node:net';
import { normalizeIp } from '../http/ip.ts';

function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right];
}

export function maskIp(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const ip = normalizeIp(value);
  switch (net.isIP(ip)) {
    case 4:
      return `${ip.split('.').slice(0, 3).join('.')}.x`;
    case 6:
      return `${expandIpv6(ip.split('%')[0]!).slice(0, 4).join(':')}:x:x:x:x`;
    default:
      return undefined;
  }
}
