/**
 * Requests refused at the API's edge before any client is known to be behind them (no token, a token
 * that does not verify, one of a disabled or deleted client) are audited too, but bounded: at most
 * AUDITED_REFUSALS_PER_MINUTE per address a minute (one conditional write on the shared counters), so a
 * flood of junk cannot fill the audit log; the rest are only logged. Neither the row nor the log line
 * holds anything of the token but, on the row, its client_id, marked unverified unless the token held.
 */
import { limitKey } from '../../http/ip.ts';
import type { Services } from '../../services.ts';
import type { Actor } from '../operations/actor.ts';
import { audited } from '../operations/audited.ts';
import { TokenRefused, type TokenMissing } from './bearer.ts';
import { ApiProblem } from './problem.ts';

export const AUDITED_REFUSALS_PER_MINUTE = 10;

export interface Caller {
  ip: string;
  userAgent: string | null;
  requestId?: string;
}

/** Audits (within the bound) or logs one refused request to `route` (`POST /keys/rotate`). */
export async function recordRefusal(services: Services, caller: Caller, route: string, refusal: TokenRefused | TokenMissing): Promise<void> {
  const client = refusal instanceof TokenRefused ? refusal.client : undefined;
  if (!(await services.store.counters.take(`admin-api:refused:${limitKey(caller.ip)}`, AUDITED_REFUSALS_PER_MINUTE, 60))) {
    services.log.warn({ ip: caller.ip, route, refusal: refusal.code }, 'admin API request refused (not audited: too many refusals from this address this minute)');
    return;
  }
  const actor: Actor = { via: 'api', clientId: client?.verified ? client.id : null, scopes: [], ...caller };
  const unverified = client && !client.verified ? ` (client_id ${JSON.stringify(client.id)}, unverified)` : '';
  // The refusal runs as a refused action, so its row is written as every denial's is; the caller answers the 401.
  await audited(services, actor, { action: 'api.authenticate', target: { type: 'admin_api', id: route } }, () =>
    Promise.reject(new ApiProblem(refusal.code, 401, `${refusal.message}${unverified}`))).catch(() => undefined);
}
