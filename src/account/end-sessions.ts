/**
 * Signing a user's sessions out from the account page: each ends as a logout would (back-channel logout,
 * the oidc-provider Session destroyed), and the account sessions bound to them end too. Every grant those
 * sessions issued is revoked, offline access included: the user ending a session (or a password change
 * signing out the others) means whoever holds it keeps no token. Apps used only from the sessions that
 * stay are untouched.
 */
import { isFirstParty } from '../first-party/app.ts';
import { endSession } from '../oidc/end-session.ts';
import type { AccountDeps } from './context.ts';

/** What ending sessions did: how many ended, and the apps (client IDs) whose access ended with them. */
export interface Ended {
  sessions: number;
  apps: string[];
}

/** Ends one of the user's sessions; undefined when it is not theirs or already gone. */
export async function endUserSession(deps: AccountDeps, userId: string, uid: string): Promise<Ended | undefined> {
  const provider = deps.provider();
  const session = await provider.Session.findByUid(uid);
  if (!session || session.accountId !== userId) return undefined;
  const apps = await endSession(provider, session, deps.log, { endOfflineGrants: true });
  await deps.store.accountSessions.deleteForOidcSessions(userId, [uid]);
  return { sessions: 1, apps: apps.filter((id) => !isFirstParty(id)) };
}

/** Ends every session of the user except `keepUid` (this browser's). */
export async function endOtherSessions(deps: AccountDeps, userId: string, keepUid: string): Promise<Ended> {
  const ended: Ended = { sessions: 0, apps: [] };
  for (const s of await deps.store.sessions.listForUser(userId)) {
    if (s.uid === keepUid) continue;
    const one = await endUserSession(deps, userId, s.uid);
    if (!one) continue;
    ended.sessions++;
    ended.apps.push(...one.apps.filter((id) => !ended.apps.includes(id)));
  }
  return ended;
}

/** The security events whose notice names the apps that were signed out. */
const ENDING_EVENTS: Record<string, string> = { session: 'session.signed_out', sessions: 'sessions.signed_out_others', password: 'password.changed' };

/**
 * The names of the apps that the user's change just signed out (`?done=` after one of ENDING_EVENTS),
 * read from the event it recorded, never from the URL: a link cannot make the page claim anything.
 */
export async function appsJustSignedOut(deps: AccountDeps, userId: string, done: unknown): Promise<string[]> {
  const type = typeof done === 'string' ? ENDING_EVENTS[done] : undefined;
  if (!type) return [];
  const [latest] = (await deps.store.events.forUser(userId, 20)).filter((e) => e.type === type && Date.now() - e.createdAt.getTime() < 10 * 60_000);
  const ids = Array.isArray(latest?.details.apps) ? latest.details.apps.filter((id): id is string => typeof id === 'string') : [];
  const provider = deps.provider();
  const names = [];
  for (const id of ids) names.push((await provider.Client.find(id).catch(() => undefined))?.clientName ?? id);
  return names;
}
