/**
 * The console's list of users: search by email or name with the filters (status, two-step, locked), a page
 * at a time (keyset: `searchUsers`'s cursor), and inviting someone by a mailed link (`inviteUser`: the
 * invitee chooses their own password; the administrator never sees one).
 */
import { OperationError } from '../admin/operations/actor.ts';
import { INVITE_TTL_SECONDS, inviteUser, searchUsers } from '../admin/operations/users.ts';
import { echo } from '../http/page.ts';
import { timeMarkup } from '../http/render.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { may } from './kit.ts';

/** The filters as the search form sends them; an empty one is "any". */
const FILTERS = ['q', 'status', 'twoStep', 'locked'] as const;
const PAGE_SIZE = 25;

/** The refusal an operation answered with, as its message for the page; anything else is not ours to show. */
export function refusal(err: unknown): OperationError {
  if (err instanceof OperationError) return err;
  throw err;
}

function filtersOf(ctx: ConsoleContext): Record<(typeof FILTERS)[number], string> {
  const value = (name: string) => (typeof ctx.query[name] === 'string' ? (ctx.query[name] as string).slice(0, 320) : '');
  return { q: value('q').trim(), status: value('status'), twoStep: value('twoStep'), locked: value('locked') };
}

export function showUsers(kit: ConsoleKit) {
  return async function usersPage(ctx: ConsoleContext) {
    const filters = filtersOf(ctx);
    const cursor = typeof ctx.query.cursor === 'string' ? ctx.query.cursor : undefined;
    const vars = { filters, canInvite: may(ctx.state.actor, 'users.write'), users: [] as unknown[], next: undefined as string | undefined };
    try {
      const found = await searchUsers(kit.deps, ctx.state.actor, {
        query: filters.q || undefined, status: filters.status || undefined,
        twoStep: filters.twoStep || undefined, locked: filters.locked || undefined, limit: PAGE_SIZE, cursor,
      });
      vars.users = found.items.map((u) => ({ ...u, created: timeMarkup(u.createdAt) }));
      if (found.nextCursor) {
        const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
        query.set('cursor', found.nextCursor);
        vars.next = `/admin/users?${query}`;
      }
    } catch (err) {
      const { message, status } = refusal(err);
      return kit.page(ctx, 'admin/users.njk', { ...vars, paged: !!cursor, error: message }, status);
    }
    kit.page(ctx, 'admin/users.njk', { ...vars, paged: !!cursor });
  };
}

function inviteForm(kit: ConsoleKit, ctx: ConsoleContext, vars: Record<string, unknown> = {}, status = 200) {
  kit.page(ctx, 'admin/invite.njk', { hours: INVITE_TTL_SECONDS / 3600, email: '', name: '', ...vars }, status);
}

export function showInvite(kit: ConsoleKit) {
  return async function invitePage(ctx: ConsoleContext) {
    inviteForm(kit, ctx);
  };
}

export function invite(kit: ConsoleKit) {
  return async function sendInvite(ctx: ConsoleContext) {
    const { form } = ctx.state;
    const email = echo(form.email, 320).trim();
    const name = echo(form.name, 200).trim();
    try {
      const user = await inviteUser(kit.deps, ctx.state.actor, { email, name: name || undefined });
      kit.flash(ctx, `/admin/users/${user.id}`, kit.deps.render.t('console.invite.done', { email: user.email }));
    } catch (err) {
      const { message, status, field } = refusal(err);
      inviteForm(kit, ctx, { email, name, errors: field ? { [field]: message } : {}, error: field ? undefined : message }, status);
    }
  };
}
