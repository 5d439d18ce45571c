/**
 * Security activity: the user's security events of the last 90 days, newest first, in words: sign-ins that
 * worked and that failed (with the address and browser they came from) and every change to the account.
 */
import { FIRST_PARTY_APPS } from '../first-party/app.ts';
import type { AccountContext, AccountDeps } from './context.ts';
import { formatTime, renderPage } from './page.ts';
import { describeDevice } from './sessions.ts';

export const ACTIVITY_DAYS = 90;
const ACTIVITY_LIMIT = 300;

export function showActivity(deps: AccountDeps) {
  return async function activityPage(ctx: AccountContext) {
    const { t } = deps.render;
    const provider = deps.provider();
    const names = new Map<string, string>();
    const appName = async (clientId: unknown): Promise<string | undefined> => {
      if (typeof clientId !== 'string') return undefined;
      const own = FIRST_PARTY_APPS.find((app) => app.clientId === clientId);
      if (own) return t(own.nameKey, { product: deps.config.productName });
      if (!names.has(clientId)) names.set(clientId, (await provider.Client.find(clientId).catch(() => undefined))?.clientName ?? clientId);
      return names.get(clientId);
    };
    const events = await deps.store.events.forUser(ctx.state.user.id, ACTIVITY_LIMIT, ACTIVITY_DAYS);
    const rows = [];
    for (const e of events) {
      const key = `account.activity.types.${e.type}`;
      const app = await appName(e.details.client);
      rows.push({
        what: t.has(key) ? t(key) : t('account.activity.types.other', { type: e.type }),
        app,
        failed: /failed|unmet|throttled/.test(e.type),
        when: formatTime(e.createdAt),
        ip: e.ip,
        device: describeDevice(deps, e.userAgent),
        // Why a second step was asked for (risk), and which method: kept with the event.
        reasons: Array.isArray(e.details.reasons)
          ? e.details.reasons.filter((r): r is string => typeof r === 'string' && t.has(`risk.reasons.${r}`)).map((r) => t(`risk.reasons.${r}`))
          : [],
        method: typeof e.details.kind === 'string' && t.has(`factors.${e.details.kind}.name`) ? t(`factors.${e.details.kind}.name`) : undefined,
      });
    }
    renderPage(deps, ctx, 'account/activity.njk', 'activity', { events: rows, days: ACTIVITY_DAYS });
  };
}
