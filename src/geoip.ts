/**
 * An optional IP-to-place lookup for the risk rules (new country, impossible travel), from a CSV file in
 * DB-IP's free "lite" formats (https://db-ip.com/db/lite.php, CC BY 4.0):
 *   country: ip_start,ip_end,country
 *   city:    ip_start,ip_end,continent,country,stateprov,city,latitude,longitude
 * IPv4 and IPv6 ranges, sorted by start as the files ship; or a MaxMind DB file (`.mmdb`: GeoLite2
 * Country/City, DB-IP lite), read by the `maxmind` package, which walks the file's own search tree.
 * Loaded once, on first use, in the background: until it is loaded (or when it cannot be read) every
 * lookup answers "unknown", never an error. The CSV reader stays for the files DB-IP ships as CSV.
 */
import { createReadStream } from 'node:fs';
import maxmind, { type CityResponse, type Reader } from 'maxmind';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { expandIpv6, normalizeIp } from './http/ip.ts';
import type { Logger } from './log.ts';

export interface Place {
  country: string;
  latitude?: number;
  longitude?: number;
}

export interface GeoIp {
  lookup(ip: string): Place | undefined;
  /** Resolves once the file is read (or failed to be). */
  ready(): Promise<void>;
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

function ipv6Number(ip: string): bigint {
  return expandIpv6(ip).reduce((n, group) => (n << 16n) + BigInt(parseInt(group || '0', 16)), 0n);
}

interface Table<N> {
  starts: N[];
  ends: N[];
  places: Place[];
}

function find<N extends number | bigint>(table: Table<N>, value: N): Place | undefined {
  let lo = 0;
  let hi = table.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (table.starts[mid]! <= value) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi >= 0 && value <= table.ends[hi]! ? table.places[hi] : undefined;
}

/** One CSV field (RFC 4180, as DB-IP writes them): a comma inside double quotes belongs to the field. */
const FIELD = /(?:^|,)("(?:[^"]|"")*"|[^,]*)/g;

/** Reads one line of either format into a range and its place; undefined for a line that is neither. */
export function parseGeoLine(line: string): { start: string; end: string; place: Place } | undefined {
  const cols = [...line.matchAll(FIELD)].map((m) => m[1]!.trim().replace(/^"([\s\S]*)"$/, '$1').replaceAll('""', '"'));
  const [start = '', end = ''] = cols;
  if (!net.isIP(start) || net.isIP(start) !== net.isIP(end)) return undefined;
  if (cols.length === 3 && /^[A-Z]{2}$/.test(cols[2]!)) return { start, end, place: { country: cols[2]! } };
  if (cols.length >= 8 && /^[A-Z]{2}$/.test(cols[3]!)) {
    const latitude = Number(cols[6]);
    const longitude = Number(cols[7]);
    const located = Number.isFinite(latitude) && Number.isFinite(longitude) && cols[6] !== '' && cols[7] !== '';
    return { start, end, place: located ? { country: cols[3]!, latitude, longitude } : { country: cols[3]! } };
  }
  return undefined;
}

/** A place from a MaxMind DB record (GeoLite2 and DB-IP lite share this shape); undefined without a country. */
export function placeOf(record: CityResponse | null): Place | undefined {
  const country = record?.country?.iso_code ?? record?.registered_country?.iso_code;
  if (!country) return undefined;
  const { latitude, longitude } = record?.location ?? {};
  return typeof latitude === 'number' && typeof longitude === 'number' ? { country, latitude, longitude } : { country };
}

function openMmdb(file: string, log: Logger): GeoIp {
  let reader: Reader<CityResponse> | undefined;
  let loading: Promise<void> | undefined;
  const load = () => (loading ??= maxmind.open<CityResponse>(file, { watchForUpdates: false }).then((r) => {
    reader = r;
    log.info({ type: r.metadata.databaseType, nodes: r.metadata.nodeCount }, 'GeoIP file loaded');
  }, (err: unknown) => {
    log.error({ err: (err as Error).message, file }, 'GeoIP file could not be read; the place-based risk rules are off');
  }));
  void load();
  return {
    lookup(value) {
      const ip = normalizeIp(value);
      if (!reader || !net.isIP(ip)) return undefined;
      try {
        return placeOf(reader.get(ip));
      } catch {
        return undefined;
      }
    },
    ready: () => load(),
  };
}

export function openGeoIp(file: string | undefined, log: Logger): GeoIp | undefined {
  if (!file) return undefined;
  if (file.toLowerCase().endsWith('.mmdb')) return openMmdb(file, log);
  const v4: Table<number> = { starts: [], ends: [], places: [] };
  const v6: Table<bigint> = { starts: [], ends: [], places: [] };
  let loaded = false;
  let loading: Promise<void> | undefined;
  const load = () => (loading ??= (async () => {
    const places = new Map<string, Place>();
    let lines = 0;
    try {
      const input = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      for await (const line of input) {
        const row = parseGeoLine(line);
        if (!row) continue;
        const key = `${row.place.country}|${row.place.latitude ?? ''}|${row.place.longitude ?? ''}`;
        const place = places.get(key) ?? places.set(key, row.place).get(key)!;
        if (net.isIP(row.start) === 4) {
          v4.starts.push(ipv4Number(row.start)); v4.ends.push(ipv4Number(row.end)); v4.places.push(place);
        } else {
          v6.starts.push(ipv6Number(row.start)); v6.ends.push(ipv6Number(row.end)); v6.places.push(place);
        }
        lines++;
      }
      loaded = true;
      log.info({ ranges: lines }, 'GeoIP file loaded');
    } catch (err) {
      log.error({ err: (err as Error).message, file }, 'GeoIP file could not be read; the place-based risk rules are off');
    }
  })());
  void load();
  return {
    lookup(value) {
      if (!loaded) return undefined;
      const ip = normalizeIp(value);
      switch (net.isIP(ip)) {
        case 4: return find(v4, ipv4Number(ip));
        case 6: return find(v6, ipv6Number(ip));
        default: return undefined;
      }
    },
    ready: () => load(),
  };
}

/** Great-circle distance in km (haversine). */
export function distanceKm(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const rad = (d: number) => (d * Math.PI) / 180;
  const dLat = rad(b.latitude - a.latitude);
  const dLon = rad(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371 * Math.asin(Math.min(1, Math.sqrt(h)));
}
