/**
 * Signing a user's sessions out from the account page: each ends as a logout would (back-channel logout,
 * grants revoked unless they outlive logout, the oidc-provider Session destroyed), and the account sessions
 * bound to them end too.
 */
import { endSession } from '../oidc/end-session.ts';
import type { AccountDeps } from './context.ts';

/** Ends one of the user's sessions; false when it is not theirs or already gone. */
export async function endUserSession(deps: AccountDeps, userId: string, uid: string): Promise<boolean> {
  const provider = deps.provider();
  const session = await provider.Session.findByUid(uid);
  if (!session || session.accountId !== userId) return false;
  await endSession(provider, session, deps.log);
  await deps.store.accountSessions.deleteForOidcSessions(userId, [uid]);
  return true;
}

/** Ends every session of the user except `keepUid` (this browser's); returns how many ended. */
export async function endOtherSessions(deps: AccountDeps, userId: string, keepUid: string): Promise<number> {
  const sessions = await deps.store.sessions.listForUser(userId);
  let ended = 0;
  for (const s of sessions) {
    if (s.uid !== keepUid && (await endUserSession(deps, userId, s.uid))) ended++;
  }
  return ended;
}
