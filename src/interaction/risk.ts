/**
 * The risk rules behind "verify only when a sign-in looks risky": small rules, each returning a reason or
 * nothing. Their input is gathered once per sign-in (gatherRisk); the rules themselves are pure. The
 * reasons are shown to the user ("We don't recognise this device"), recorded in the security activity,
 * and make `amr` carry `rba`.
 */
import type { Context } from 'koa';
import type { Config } from '../config.ts';
import { distanceKm, type GeoIp, type Place } from '../geoip.ts';
import { networkPrefix } from '../http/ip.ts';
import type { Store } from '../store/index.ts';
import type { UserNetwork } from '../store/networks.ts';
import type { User } from '../store/users.ts';
import { deviceCookie, deviceHash } from '../security/device.ts';

export type RiskReason = 'new_device' | 'new_network' | 'new_country' | 'impossible_travel' | 'recent_failures' | 'inactive';

export interface RiskInput {
  /** The browser carries a device cookie on which this user completed a sign-in before. */
  deviceKnown: boolean;
  /** The network of this request (ip.ts networkPrefix), when the address is one. */
  prefix: string | undefined;
  /** Where this request comes from, when a GeoIP file is configured and knows the address. */
  place: Place | undefined;
  /** The user's networks, most recently seen first. */
  networks: readonly UserNetwork[];
  /** Failed attempts on the account since its last successful sign-in (within the window). */
  recentFailures: number;
  now: number;
}

export interface RiskRule {
  name: string;
  check(input: RiskInput, config: Config['risk']): RiskReason | undefined;
}

export const RULES: readonly RiskRule[] = [
  { name: 'device', check: (i) => (i.deviceKnown ? undefined : 'new_device') },
  { name: 'network', check: (i) => (i.prefix && i.networks.some((n) => n.prefix === i.prefix) ? undefined : 'new_network') },
  {
    name: 'country',
    check: (i) => {
      if (!i.place) return undefined;
      const known = i.networks.filter((n) => n.country);
      return known.length && !known.some((n) => n.country === i.place!.country) ? 'new_country' : undefined;
    },
  },
  {
    name: 'travel',
    check: (i, config) => {
      const here = i.place;
      const last = i.networks.find((n) => n.latitude !== null && n.longitude !== null);
      if (here?.latitude === undefined || here.longitude === undefined || !last) return undefined;
      const km = distanceKm({ latitude: last.latitude!, longitude: last.longitude! }, { latitude: here.latitude, longitude: here.longitude });
      const hours = Math.max((i.now - last.lastSeenAt.getTime()) / 3_600_000, 1 / 60);
      // Nearby places are never "impossible": GeoIP puts one city's addresses a few hundred km apart.
      return km > 500 && km / hours > config.impossibleTravelKmh ? 'impossible_travel' : undefined;
    },
  },
  { name: 'failures', check: (i) => (i.recentFailures > 0 ? 'recent_failures' : undefined) },
  {
    name: 'inactivity',
    check: (i, config) => {
      const last = i.networks[0]?.lastSeenAt;
      return last && i.now - last.getTime() > config.inactivityDays * 86_400_000 ? 'inactive' : undefined;
    },
  },
];

export function assessRisk(input: RiskInput, config: Config['risk']): RiskReason[] {
  const reasons: RiskReason[] = [];
  for (const rule of RULES) {
    const reason = rule.check(input, config);
    if (reason && !reasons.includes(reason)) reasons.push(reason);
  }
  return reasons;
}

/** The failures that count as "recent failed attempts". */
export const FAILURE_EVENTS = ['sign_in.failed', 'two_step.failed'] as const;

export interface RiskDeps {
  config: Config;
  store: Store;
  geoip: GeoIp | undefined;
}

/** Gathers the rules' input for this request (ctx.ip: X-Forwarded-For only counts from trusted proxies). */
export async function gatherRisk(deps: RiskDeps, ctx: Context, user: User, now = Date.now()): Promise<RiskInput> {
  const id = deviceCookie(deps.config).read(ctx);
  const [deviceKnown, networks, recentFailures] = await Promise.all([
    id ? deps.store.devices.isKnown(user.id, deviceHash(id)) : Promise.resolve(false),
    deps.store.networks.forUser(user.id),
    deps.store.events.countSinceLastSuccess(user.id, FAILURE_EVENTS, deps.config.risk.failureWindowHours),
  ]);
  return { deviceKnown, prefix: networkPrefix(ctx.ip), place: deps.geoip?.lookup(ctx.ip), networks, recentFailures, now };
}
