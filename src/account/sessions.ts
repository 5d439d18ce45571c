/**
 * Sessions: where and when the user is signed in (browser, approximate place, last seen), this browser
 * marked; sign out any other one, or all others. The list is oidc-provider's live sessions for the account
 * with their recorded activity.
 */
import { z } from 'zod';
import type { UserSession } from '../store/sessions.ts';
import { requestMeta, type AccountContext, type AccountDeps } from './context.ts';
import { appsJustSignedOut, endOtherSessions, endUserSession } from './end-sessions.ts';
import { doneRedirect, formatTime, renderPage } from './page.ts';
import { maskIp } from './place.ts';
import { parseUserAgent } from './user-agent.ts';

const signOutForm = z.object({ session: z.string().regex(/^[A-Za-z0-9_-]{10,64}$/) });

export function describeDevice(deps: Pick<AccountDeps, 'render'>, userAgent: string | null): string {
  const { browser, os } = parseUserAgent(userAgent);
  const { t } = deps.render;
  if (browser && os) return t('account.device.browserOnOs', { browser, os });
  if (browser || os) return (browser ?? os)!;
  return t('account.device.unknown');
}

function row(deps: AccountDeps, s: UserSession, current: boolean) {
  const ip = maskIp(s.ip);
  return {
    uid: s.uid,
    current,
    device: describeDevice(deps, s.userAgent),
    place: ip ? deps.render.t('account.sessions.place', { ip }) : deps.render.t('account.sessions.placeUnknown'),
    signedIn: formatTime(s.authTime ?? s.createdAt),
    lastSeen: formatTime(s.lastSeenAt ?? s.authTime),
  };
}

async function show(deps: AccountDeps, ctx: AccountContext, vars: Record<string, unknown> = {}, status = 200) {
  const { user, account } = ctx.state;
  const sessions = (await deps.store.sessions.listForUser(user.id)).map((s) => row(deps, s, s.uid === account.oidcSessionUid));
  sessions.sort((a, b) => Number(b.current) - Number(a.current));
  renderPage(deps, ctx, 'account/sessions.njk', 'sessions', { sessions, others: sessions.some((s) => !s.current), ...vars }, status);
}

export function showSessions(deps: AccountDeps) {
  return async function sessionsPage(ctx: AccountContext) {
    await show(deps, ctx, { appsSignedOut: await appsJustSignedOut(deps, ctx.state.user.id, ctx.query.done) });
  };
}

export function signOutSession(deps: AccountDeps) {
  return async function signOutOne(ctx: AccountContext) {
    const { user, account } = ctx.state;
    const parsed = signOutForm.safeParse(ctx.state.form);
    // This browser signs out with "Sign out" (the provider's logout), not from the list.
    const ended = parsed.success && parsed.data.session !== account.oidcSessionUid ? await endUserSession(deps, user.id, parsed.data.session) : undefined;
    if (!ended) return show(deps, ctx, { error: deps.render.t('account.sessions.gone') }, 400);
    await deps.events.record({ type: 'session.signed_out', userId: user.id, ...requestMeta(ctx), details: { apps: ended.apps } });
    doneRedirect(deps, ctx, '/account/sessions', 'session');
  };
}

export function signOutOthers(deps: AccountDeps) {
  return async function signOutAllOthers(ctx: AccountContext) {
    const { user, account } = ctx.state;
    const ended = await endOtherSessions(deps, user.id, account.oidcSessionUid);
    await deps.events.record({ type: 'sessions.signed_out_others', userId: user.id, ...requestMeta(ctx), details: { sessionsEnded: ended.sessions, apps: ended.apps } });
    doneRedirect(deps, ctx, '/account/sessions', 'sessions');
  };
}
