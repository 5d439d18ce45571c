/**
 * An approximate place for a session: its IP address with the host part masked ("203.0.113.x", for IPv6
 * the first four groups). Where on a map comes later (GeoIP); until then the place is "location unknown".
 */
import net from 'node:net';
import { expandIpv6, normalizeIp } from '../http/ip.ts';

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
