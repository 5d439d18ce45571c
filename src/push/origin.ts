/** Where a prompt's request came from, as the phone shows it: the app, the browser and OS, the masked IP and country. */
import type { GeoIp } from '../geoip.ts';
import { maskIp } from '../account/place.ts';
import { parseUserAgent } from '../account/user-agent.ts';
import type { PromptOrigin } from './prompts.ts';

export function promptOrigin(geoip: GeoIp | undefined, request: { ip: string; userAgent: string | null }, client: PromptOrigin['client']): PromptOrigin {
  const ua = parseUserAgent(request.userAgent);
  return {
    ip: request.ip,
    browser: ua.browser ?? 'Unknown browser',
    os: ua.os ?? 'unknown system',
    place: { ip: maskIp(request.ip) ?? 'unknown', country: geoip?.lookup(request.ip)?.country ?? null },
    client: { id: client.id, name: client.name, logoUrl: client.logoUrl?.startsWith('https://') ? client.logoUrl : null },
  };
}
