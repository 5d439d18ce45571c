/**
 * One user's page in the console: the account (`showUser`), its two-step methods with their last use,
 * its sessions (sign out one or all), its security activity, and the actions the administrator's roles
 * allow on this account (buttons a role cannot use are not shown; the operations refuse them anyway).
 */
import type { UserDetail } from '../admin/operations/user-detail.ts';
import { DETAIL_EVENT_DAYS, showUser } from '../admin/operations/user-detail.ts';
import { listSessions, type SessionView } from '../admin/operations/user-sessions.ts';
import { describeDevice } from '../account/sessions.ts';
import { timeMarkup } from '../http/render.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { may } from './kit.ts';
import { refusal } from './user-list.ts';

/** What the page shows of a user, in words. */
function present(kit: ConsoleKit, detail: UserDetail, sessions: SessionView[]) {
  const { t } = kit.deps.render;
  const kindName = (kind: string) => (t.has(`factors.${kind}.name`) ? t(`factors.${kind}.name`) : kind);
  return {
    target: detail,
    created: timeMarkup(detail.createdAt),
    roleNames: detail.roles.map((r) => t(`console.roles.${r}`)).join(', '),
    methods: detail.methods.map((m) => ({
      ...m, kindName: kindName(m.kind), added: timeMarkup(m.createdAt), lastUsed: m.lastUsedAt ? timeMarkup(m.lastUsedAt) : undefined,
    })),
    sessions: sessions.map((s) => ({
      id: s.id, device: describeDevice(kit.deps, s.userAgent), ip: s.ip,
      signedIn: s.authTime ? timeMarkup(s.authTime) : undefined, lastSeen: s.lastSeenAt ? timeMarkup(s.lastSeenAt) : undefined,
    })),
    events: detail.events.map((e) => {
      const key = `account.activity.types.${e.type}`;
      return {
        what: t.has(key) ? t(key) : t('account.activity.types.other', { type: e.type }),
        failed: /failed|unmet|throttled/.test(e.type),
        when: timeMarkup(e.createdAt), ip: e.ip, device: describeDevice(kit.deps, e.userAgent),
      };
    }),
    days: DETAIL_EVENT_DAYS,
  };
}

/** What this administrator may do to this account: the page's buttons. */
function abilities(ctx: ConsoleContext, detail: UserDetail) {
  const { actor } = ctx.state;
  const write = may(actor, 'users.write', detail);
  const self = detail.id === ctx.state.user.id;
  return {
    write,
    grant: may(actor, 'roles.grant'),
    // Never from the help desk on a role holder (the operation refuses it too), never on oneself.
    twoStepReset: write && detail.roles.length === 0 && !self,
    remove: write && !self,
  };
}

/** Renders the user's page; `vars` carries an action's refusal (`error`) with its status. */
export async function renderUserPage(kit: ConsoleKit, ctx: ConsoleContext, id: string, vars: Record<string, unknown> = {}, status = 200): Promise<void> {
  let detail: UserDetail;
  let sessions: SessionView[];
  try {
    detail = await showUser(kit.deps, ctx.state.actor, id);
    sessions = await listSessions(kit.deps, ctx.state.actor, detail.id);
  } catch (err) {
    const refused = refusal(err);
    return kit.page(ctx, 'admin/user-missing.njk', { error: refused.message }, refused.status);
  }
  kit.page(ctx, 'admin/user.njk', { ...present(kit, detail, sessions), can: abilities(ctx, detail), ...vars }, status);
}

export function showUserPage(kit: ConsoleKit) {
  return async function userPage(ctx: ConsoleContext) {
    await renderUserPage(kit, ctx, ctx.params.id!);
  };
}
