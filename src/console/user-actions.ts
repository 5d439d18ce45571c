/**
 * What the console does to one user, each through its operation (which checks the roles, the last
 * administrator and the help-desk rules, and leaves the audit row): disable and enable, unlock, a reset
 * link, signing out one session or all; and the sensitive ones behind a step-up, each with its own page
 * first: delete (typing the address to confirm), the console roles, the help-desk reset of a lost second
 * factor (how identity was re-proved, the ticket, the methods to remove). A refusal is shown on the page
 * it came from, in the operation's words, with its status.
 */
import { resetTwoStep } from '../admin/operations/two-step-reset.ts';
import { changeRoles, disableUser, enableUser, sendResetLink, unlockUser } from '../admin/operations/user-access.ts';
import { showUser, type UserDetail } from '../admin/operations/user-detail.ts';
import { revokeSessions } from '../admin/operations/user-sessions.ts';
import { deleteUser } from '../admin/operations/users.ts';
import { backupFactor } from '../factors/index.ts';
import { echo } from '../http/page.ts';
import { normalizeEmail, ROLES } from '../store/users.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { refusal } from './user-list.ts';
import { renderUserPage } from './user-page.ts';

const userPath = (ctx: ConsoleContext) => `/admin/users/${ctx.params.id}`;

/** A POST from the user's page: the operation, then back there with its notice, or its refusal on the page. */
function onUser(kit: ConsoleKit, run: (ctx: ConsoleContext) => Promise<string>) {
  return async function userAction(ctx: ConsoleContext) {
    let notice: string;
    try {
      notice = await run(ctx);
    } catch (err) {
      const { message, status } = refusal(err);
      return renderUserPage(kit, ctx, ctx.params.id!, { error: message }, status);
    }
    kit.flash(ctx, userPath(ctx), notice);
  };
}

export function userActions(kit: ConsoleKit) {
  const { t } = kit.deps.render;
  const id = (ctx: ConsoleContext) => ctx.params.id!;
  return {
    disable: onUser(kit, async (ctx) => t('console.done.disabled', { email: (await disableUser(kit.deps, ctx.state.actor, id(ctx))).email })),
    enable: onUser(kit, async (ctx) => t('console.done.enabled', { email: (await enableUser(kit.deps, ctx.state.actor, id(ctx))).email })),
    unlock: onUser(kit, async (ctx) => {
      const done = await unlockUser(kit.deps, ctx.state.actor, id(ctx));
      return t(done.wasLocked ? 'console.done.unlocked' : 'console.done.unlockedNoLock', { email: done.email });
    }),
    resetLink: onUser(kit, async (ctx) => t('console.done.resetLink', { email: (await sendResetLink(kit.deps, ctx.state.actor, id(ctx))).email })),
    revokeSessions: onUser(kit, async (ctx) => {
      const session = ctx.state.form.session || undefined;
      const done = await revokeSessions(kit.deps, ctx.state.actor, id(ctx), session);
      if (session) return t('console.done.sessionRevoked');
      const user = await kit.deps.store.users.findById(id(ctx));
      return t('console.done.sessionsRevoked', { email: user?.email ?? id(ctx), count: done.sessionsEnded });
    }),
  };
}

/**
 * The page of a sensitive action (after the step-up): the user as `showUser` reads them for this
 * administrator (a role or a missing user refused there, as on the user's page), then the form.
 */
async function confirmationPage(kit: ConsoleKit, ctx: ConsoleContext, template: string, vars: (detail: UserDetail) => Record<string, unknown>, status = 200): Promise<void> {
  let detail: UserDetail;
  try {
    detail = await showUser(kit.deps, ctx.state.actor, ctx.params.id!);
  } catch (err) {
    const refused = refusal(err);
    return kit.page(ctx, 'admin/user-missing.njk', { error: refused.message }, refused.status);
  }
  kit.page(ctx, template, { target: detail, ...vars(detail) }, status);
}

export function deletion(kit: ConsoleKit) {
  const { t } = kit.deps.render;
  return {
    show: (ctx: ConsoleContext) => confirmationPage(kit, ctx, 'admin/user-delete.njk', () => ({ confirm: '' })),
    async remove(ctx: ConsoleContext) {
      const target = await kit.deps.store.users.findById(ctx.params.id!);
      const typed = echo(ctx.state.form.confirm, 320).trim();
      // The address typed back: a deletion is never one click away from a wrong row.
      if (target && normalizeEmail(typed) !== normalizeEmail(target.email)) {
        return confirmationPage(kit, ctx, 'admin/user-delete.njk', () => ({ confirm: typed, errors: { confirm: t('console.delete.mismatch') } }), 400);
      }
      try {
        const gone = await deleteUser(kit.deps, ctx.state.actor, ctx.params.id!);
        kit.flash(ctx, '/admin/users', t('console.done.deleted', { email: gone.email }));
      } catch (err) {
        const { message, status } = refusal(err);
        await confirmationPage(kit, ctx, 'admin/user-delete.njk', () => ({ confirm: typed, error: message }), status);
      }
    },
  };
}

export function roleChange(kit: ConsoleKit) {
  const { t } = kit.deps.render;
  const form = (ctx: ConsoleContext, vars: Record<string, unknown> = {}, status = 200) =>
    confirmationPage(kit, ctx, 'admin/user-roles.njk', (detail) => ({
      roleChoices: ROLES.map((r) => ({ id: r, label: t(`console.roles.${r}`), checked: detail.roles.includes(r) })),
    ...vars }), status);
  return {
    show: (ctx: ConsoleContext) => form(ctx),
    async save(ctx: ConsoleContext) {
      const target = await kit.deps.store.users.findById(ctx.params.id!);
      const wanted = ROLES.filter((r) => ctx.state.form[`role:${r}`] === 'yes');
      const held = target?.roles ?? [];
      try {
        const done = await changeRoles(kit.deps, ctx.state.actor, ctx.params.id!, {
          grant: wanted.filter((r) => !held.includes(r)), revoke: ROLES.filter((r) => held.includes(r) && !wanted.includes(r)),
        });
        const names = done.roles.map((r) => t(`console.roles.${r}`)).join(', ') || t('console.user.noRoles');
        kit.flash(ctx, userPath(ctx), t('console.done.roles', { email: done.email, roles: names }));
      } catch (err) {
        const { message, status } = refusal(err);
        await form(ctx, { error: message }, status);
      }
    },
  };
}

export function twoStepReset(kit: ConsoleKit) {
  const { t } = kit.deps.render;
  const kindName = (kind: string) => (t.has(`factors.${kind}.name`) ? t(`factors.${kind}.name`) : kind);
  const form = (ctx: ConsoleContext, vars: Record<string, unknown> = {}, status = 200) =>
    confirmationPage(kit, ctx, 'admin/user-two-step-reset.njk', (detail) => ({
      // The methods a lost device takes away (the recovery codes go with the last of them).
      removable: detail.methods.filter((m) => m.possession || m.kind === backupFactor().kind).map((m) => ({ ...m, kindName: kindName(m.kind) })),
      proof: '', ticket: '', ...vars,
    }), status);
  return {
    show: (ctx: ConsoleContext) => form(ctx),
    async reset(ctx: ConsoleContext) {
      const f = ctx.state.form;
      const proof = echo(f.proof, 500);
      const ticket = echo(f.ticket, 200);
      const chosen = Object.keys(f).filter((k) => k.startsWith('method:') && f[k] === 'yes').map((k) => k.slice('method:'.length));
      try {
        const done = await resetTwoStep(kit.deps, ctx.state.actor, ctx.params.id!, { methods: f.all === 'yes' ? 'all' : chosen, proof, ticket });
        kit.flash(ctx, userPath(ctx), t('console.done.twoStepReset', { email: done.email, count: done.removed.length }));
      } catch (err) {
        const { message, status, field } = refusal(err);
        const onField = field === 'proof' || field === 'ticket';
        await form(ctx, { proof, ticket, errors: onField ? { [field]: message } : {}, error: onField ? undefined : message }, status);
      }
    },
  };
}
