/**
 * IP address helpers: trusted-proxy ranges and the client address behind them. Ranges are Node's own
 * net.BlockList (no ipaddr.js needed); the walk of X-Forwarded-For is the few lines proxy-addr would add,
 * kept here so that an unparsable hop stops it at the last good address.
 */
import net from 'node:net';

/** "::ffff:1.2.3.4" is the IPv4 address 1.2.3.4. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

/** A matcher for "10.0.0.0/8", "::1" or "127.0.0.1"; undefined when the text is not one. */
export function parseCidr(text: string): ((ip: string) => boolean) | undefined {
  const [addr = '', bitsText, ...rest] = text.trim().split('/');
  const family = net.isIP(addr);
  if (!family || rest.length) return undefined;
  const max = family === 4 ? 32 : 128;
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (bits > max) return undefined;
  const list = new net.BlockList();
  list.addSubnet(addr, bits, family === 4 ? 'ipv4' : 'ipv6');
  return (ip: string) => {
    const candidate = normalizeIp(ip);
    const f = net.isIP(candidate);
    return f !== 0 && list.check(candidate, f === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * The client address: the socket peer, unless the peer is a trusted proxy, in which case
 * X-Forwarded-For is walked from the right, skipping trusted proxies. Anything unparsable
 * stops the walk at the last address known to be good, so garbage never wins.
 */
export function clientIp(peer: string, forwardedFor: string | undefined, trusted: (ip: string) => boolean): string {
  let ip = normalizeIp(peer);
  if (!forwardedFor || !trusted(ip)) return ip;
  const hops = forwardedFor.split(',').map((h) => normalizeIp(h.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!net.isIP(hop)) break;
    ip = hop;
    if (!trusted(hop)) break;
  }
  return ip;
}

/** The eight groups of an IPv6 address ("2001:db8::1" -> ["2001","db8","0",…,"1"]), without a zone. */
export function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right];
}

/**
 * The network an address belongs to, as the risk rules compare them: the /24 of an IPv4 address, the /48
 * of an IPv6 one ("203.0.113.0/24", "2001:db8:85a3::/48"); undefined for anything else.
 */
export function networkPrefix(value: string): string | undefined {
  const ip = normalizeIp(value);
  switch (net.isIP(ip)) {
    case 4:
      return `${ip.split('.').slice(0, 3).join('.')}.0/24`;
    case 6: {
      const groups = expandIpv6(ip).slice(0, 3).map((g) => parseInt(g, 16).toString(16));
      return `${groups.join(':')}::/48`;
    }
    default:
      return undefined;
  }
}

/**
 * What a per-address limit counts: an IPv4 address itself, an IPv6 address by its /64 (one host is given a
 * whole /64, so counting single IPv6 addresses would let it rotate past any cap).
 */
export function limitKey(value: string): string {
  const ip = normalizeIp(value);
  if (net.isIP(ip) !== 6) return ip;
  return `${expandIpv6(ip).slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}
