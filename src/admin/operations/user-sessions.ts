/**
 * A user's sign-in sessions, as administrators see and end them: one (as a logout would, its grants
 * revoked, offline access included) or all at once (every grant and token of the account revoked).
 */
import { endSession } from '../../oidc/end-session.ts';
import { revokedGrantSeconds } from '../../oidc/adapter.ts';
import type { Services } from '../../services.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { logOutApps, providerFor } from './provider.ts';
import { findUser, found, view } from './user-target.ts';

export interface SessionView {
  id: string;
  /** When the user last proved who they are in it. */
  authTime: Date | null;
  acr: string | null;
  ip: string | null;
  userAgent: string | null;
  lastSeenAt: Date | null;
  expiresAt: Date | null;
}

export async function listSessions(services: Services, actor: Actor, ref: string): Promise<SessionView[]> {
  const target = await findUser(services, ref);
  return audited(services, actor, {
    action: 'users.sessions',
    target: { type: 'user', id: target?.id ?? ref },
    outcome: (sessions) => ({ after: { count: sessions.length } }),
  }, async () => {
    authorize(actor, 'users.read'); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, 'users.read', target);
    return (await services.store.sessions.listForUser(target.id)).map((s) => ({
      id: s.uid, authTime: s.authTime, acr: s.acr, ip: s.ip, userAgent: s.userAgent, lastSeenAt: s.lastSeenAt, expiresAt: s.expiresAt,
    }));
  });
}

/**
 * Ends the user's session `sessionId`, or every session when none is named; how many ended. Ending all
 * also revokes every grant, refresh and access token of the account, whichever session issued it.
 */
export async function revokeSessions(services: Services, actor: Actor, ref: string, sessionId?: string): Promise<{ sessionsEnded: number }> {
  const who = actorFields(actor);
  const target = await findUser(services, ref);
  return audited(services, actor, {
    action: 'users.revoke_sessions',
    target: { type: 'user', id: target?.id ?? ref },
    before: target && view(target),
    outcome: (r) => ({
      after: { session: sessionId ?? 'all', ...r },
      event: {
        type: sessionId ? 'user.session_revoked' : 'user.sessions_revoked', userId: target!.id, ...who,
        details: { ...who.details, sessionsEnded: r.sessionsEnded },
      },
    }),
  }, async () => {
    authorize(actor, 'users.write'); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, 'users.write', target);
    if (sessionId === undefined) {
      const sessions = await services.store.endAccountAccess(target.id, revokedGrantSeconds(services.config));
      await logOutApps(services, target.id, sessions);
      return { sessionsEnded: sessions.length };
    }
    const provider = await providerFor(services);
    const session = await provider.Session.findByUid(sessionId);
    if (!session || session.accountId !== target.id) throw new OperationError('session.not_found', `${target.email} has no session ${sessionId}`, 404, 'session');
    await endSession(provider, session, services.log, { endOfflineGrants: true });
    await services.store.accountSessions.deleteForOidcSessions(target.id, [sessionId]);
    return { sessionsEnded: 1 };
  });
}
