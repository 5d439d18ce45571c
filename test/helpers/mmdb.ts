/**
 * Writes a small MaxMind DB (.mmdb, format 2.0) for tests: an IPv6 search tree (IPv4 networks live at
 * ::a.b.c.d, as in GeoLite2 and DB-IP lite), 32-bit records, and GeoLite2-City-shaped records
 * ({ country: { iso_code }, location: { latitude, longitude } }). Enough of the format for a real reader.
 */
import net from 'node:net';
import { expandIpv6 } from '../../src/http/ip.ts';

export interface MmdbEntry {
  /** "203.0.113.0/24" or "2001:db8::/32". */
  network: string;
  country: string;
  latitude?: number;
  longitude?: number;
}

type Value = string | number | { double: number } | { uint16: number } | { uint32: number } | { uint64: bigint } | Value[] | { [key: string]: Value };

function control(type: number, size: number): Buffer {
  if (size >= 29) throw new Error('sizes of 29 and more are not needed here');
  return type <= 7 ? Buffer.from([(type << 5) | size]) : Buffer.from([size, type - 7]);
}

function uint(type: number, value: bigint): Buffer {
  const bytes: number[] = [];
  for (let v = value; v > 0n; v >>= 8n) bytes.unshift(Number(v & 0xffn));
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

function encode(value: Value): Buffer {
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([control(2, bytes.length), bytes]);
  }
  if (typeof value === 'number') throw new Error('say which kind of number');
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map(encode)]);
  if ('double' in value && typeof value.double === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(value.double);
    return Buffer.concat([control(3, 8), b]);
  }
  if ('uint16' in value && typeof value.uint16 === 'number') return uint(5, BigInt(value.uint16));
  if ('uint32' in value && typeof value.uint32 === 'number') return uint(6, BigInt(value.uint32));
  if ('uint64' in value && typeof value.uint64 === 'bigint') return uint(9, value.uint64);
  const entries = Object.entries(value as Record<string, Value>);
  return Buffer.concat([control(7, entries.length), ...entries.flatMap(([k, v]) => [encode(k), encode(v)])]);
}

/** The 128 bits of a network's address (IPv4 as ::a.b.c.d), and its prefix length in that tree. */
function bitsOf(network: string): { bits: number[]; prefix: number } {
  const [addr = '', len] = network.split('/');
  const family = net.isIP(addr);
  let groups: number[];
  let prefix = Number(len);
  if (family === 4) {
    const [a, b, c, d] = addr.split('.').map(Number) as [number, number, number, number];
    groups = [0, 0, 0, 0, 0, 0, (a << 8) | b, (c << 8) | d];
    prefix += 96;
  } else {
    groups = expandIpv6(addr).map((g) => parseInt(g || '0', 16));
  }
  return { bits: groups.flatMap((g) => Array.from({ length: 16 }, (_, i) => (g >> (15 - i)) & 1)), prefix };
}

export function writeMmdb(entries: readonly MmdbEntry[]): Buffer {
  // The tree: each node has two records; a record is another node, nothing, or a record in the data section.
  type Rec = { node: number } | { data: number } | null;
  const nodes: [Rec, Rec][] = [[null, null]];
  const data: Buffer[] = [];
  const offsets: number[] = [];
  let size = 0;
  for (const e of entries) {
    const record: Record<string, Value> = { country: { iso_code: e.country } };
    if (e.latitude !== undefined && e.longitude !== undefined) record.location = { latitude: { double: e.latitude }, longitude: { double: e.longitude } };
    const bytes = encode(record);
    offsets.push(size);
    data.push(bytes);
    size += bytes.length;
    const { bits, prefix } = bitsOf(e.network);
    let node = 0;
    for (let i = 0; i < prefix - 1; i++) {
      const side = bits[i]!;
      let next = nodes[node]![side];
      if (!next || !('node' in next)) {
        nodes.push([null, null]);
        next = { node: nodes.length - 1 };
        nodes[node]![side] = next;
      }
      node = next.node;
    }
    nodes[node]![bits[prefix - 1]!] = { data: offsets.length - 1 };
  }
  const count = nodes.length;
  const tree = Buffer.alloc(count * 8);
  nodes.forEach(([left, right], i) => {
    const value = (r: Rec) => (r === null ? count : 'node' in r ? r.node : count + 16 + offsets[r.data]!);
    tree.writeUInt32BE(value(left), i * 8);
    tree.writeUInt32BE(value(right), i * 8 + 4);
  });
  const metadata = encode({
    node_count: { uint32: count }, record_size: { uint16: 32 }, ip_version: { uint16: 6 },
    database_type: 'Latchkey-Test-City', languages: ['en'], binary_format_major_version: { uint16: 2 },
    binary_format_minor_version: { uint16: 0 }, build_epoch: { uint64: BigInt(Math.floor(Date.now() / 1000)) },
    description: { en: 'Latchkey test data' },
  });
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), metadata]);
}
