/** Every repository over one database: the only door to SQL. */
import { accountSessionsRepository } from './account-sessions.ts';
import { auditLogRepository } from './audit-log.ts';
import { authenticatorsRepository } from './authenticators.ts';
import { clientsRepository } from './clients.ts';
import { consentsRepository } from './consents.ts';
import { consoleSessionsRepository } from './console-sessions.ts';
import { countersRepository } from './counters.ts';
import type { Database, Db } from './db.ts';
import { devicesRepository } from './devices.ts';
import { networksRepository } from './networks.ts';
import { oidcPayloadsRepository, type Payload } from './oidc-payloads.ts';
import { oneTimeCodesRepository } from './one-time-codes.ts';
import { pendingStepsRepository } from './pending-steps.ts';
import { pushDevicesRepository } from './push-devices.ts';
import type { Sealer } from './seal.ts';
import { securityEventsRepository } from './security-events.ts';
import { sessionsRepository } from './sessions.ts';
import { signInProgressRepository } from './sign-in-progress.ts';
import { signingKeysRepository } from './signing-keys.ts';
import { normalizeEmail, usersRepository, type NewUser, type User } from './users.ts';

export function createStore(database: Database, sealer: Sealer) {
  const db = database.knex;
  return {
    database,
    users: usersRepository(db),
    clients: clientsRepository(db, sealer),
    signingKeys: signingKeysRepository(db, sealer),
    oidc: oidcPayloadsRepository(db),
    codes: oneTimeCodesRepository(db),
    counters: countersRepository(db),
    events: securityEventsRepository(db),
    audit: auditLogRepository(db),
    sessions: sessionsRepository(db),
    accountSessions: accountSessionsRepository(db),
    consoleSessions: consoleSessionsRepository(db),
    authenticators: authenticatorsRepository(db, sealer),
    pending: pendingStepsRepository(db, sealer),
    pushDevices: pushDevicesRepository(db, sealer),
    progress: signInProgressRepository(db),
    devices: devicesRepository(db),
    consents: consentsRepository(db),
    networks: networksRepository(db),
    /** Spends the first-admin setup token and creates the admin in one transaction: both or neither. */
    async createFirstAdmin(token: string, user: NewUser): Promise<User | undefined> {
      return db.transaction(async (trx) => {
        if (!(await oneTimeCodesRepository(trx).spend('admin_setup', token))) return undefined;
        return usersRepository(trx).create({ ...user, roles: ['admin'] });
      });
    },
    /**
     * Disables a user and, in the same transaction, ends every session and revokes every grant and token of
     * the account (like a reset). The last active administrator is refused (LastAdminError). Returns the
     * user as it was and the ended sessions (for back-channel logout); undefined when there is no such user.
     */
    async disableUser(id: string, revokedGrantSeconds: number): Promise<{ user: User; sessions: Payload[] } | undefined> {
      return db.transaction(async (trx) => {
        const users = usersRepository(trx);
        await users.keepAnAdmin(id);
        const user = await users.findById(id);
        if (!user) return undefined;
        await users.setStatus(id, 'disabled');
        return { user, sessions: await endAccess(trx, id, revokedGrantSeconds) };
      });
    },
    /**
     * Deletes a user, ending its sessions and revoking its grants and tokens first, in one transaction; the
     * last active administrator is refused (LastAdminError). Its security events and audit rows stay.
     */
    async deleteUser(id: string, revokedGrantSeconds: number): Promise<{ user: User; sessions: Payload[] } | undefined> {
      return db.transaction(async (trx) => {
        const users = usersRepository(trx);
        await users.keepAnAdmin(id);
        const user = await users.findById(id);
        if (!user) return undefined;
        const sessions = await endAccess(trx, id, revokedGrantSeconds);
        await users.remove(id);
        return { user, sessions };
      });
    },
    /**
     * Ends every session of an account and revokes its grants and tokens, in one transaction (an
     * administrator's "sign out everywhere"). Returns the ended sessions, for back-channel logout.
     */
    async endAccountAccess(id: string, revokedGrantSeconds: number): Promise<Payload[]> {
      return db.transaction((trx) => endAccess(trx, id, revokedGrantSeconds));
    },
    /**
     * Spends an invitation and sets the invitee's first password in one transaction, confirming the address
     * the invitation went to. Undefined when the link is not live, or the account is gone, disabled or has
     * another address now.
     */
    async acceptInvite(token: string, passwordHash: string): Promise<User | undefined> {
      return db.transaction(async (trx) => {
        const codes = oneTimeCodesRepository(trx);
        const users = usersRepository(trx);
        const spent = await codes.spend('invite', token);
        const user = spent?.userId ? await users.findById(spent.userId) : undefined;
        const sentTo = typeof spent?.data?.email === 'string' ? spent.data.email : undefined;
        if (!spent || !user || user.status !== 'active' || !sentTo || normalizeEmail(sentTo) !== normalizeEmail(user.email)) return undefined;
        await users.setPassword(user.id, passwordHash);
        await users.markEmailVerified(user.id, sentTo);
        await codes.revokeAll('invite', user.id);
        return user;
      });
    },
    /**
     * Spends an email-change token and changes the address it carries, in one transaction: when the address
     * is taken (DuplicateEmailError is thrown) nothing is spent. Undefined when the token is not live, the
     * account is gone or disabled, or its address changed since the link was sent. Returns the user as it
     * was before the change.
     */
    async changeEmailWithToken(token: string): Promise<{ user: User; email: string } | undefined> {
      return db.transaction(async (trx) => {
        const users = usersRepository(trx);
        const spent = await oneTimeCodesRepository(trx).spend('email_change', token);
        const user = spent?.userId ? await users.findById(spent.userId) : undefined;
        const { email, from } = spent?.data ?? {};
        if (!user || user.status !== 'active' || typeof email !== 'string') return undefined;
        // A link asked for while the account had another address (changed since) is dead.
        if (typeof from !== 'string' || normalizeEmail(from) !== normalizeEmail(user.email)) return undefined;
        await users.changeEmail(user.id, email);
        return { user, email };
      });
    },
    /**
     * "This wasn't me" from a new-device alert: spends the link and, in one transaction, ends every session
     * of the account, revokes its tokens and forgets the device the alert was about. Returns the ended
     * sessions (for back-channel logout), or undefined when the link is not live or the account is disabled.
     */
    async signOutEverywhere(token: string, revokedGrantSeconds: number): Promise<{ user: User; sessions: Payload[] } | undefined> {
      return db.transaction(async (trx) => {
        const spent = await oneTimeCodesRepository(trx).spend('not_me', token);
        const user = spent?.userId ? await usersRepository(trx).findById(spent.userId) : undefined;
        if (!spent || !user || user.status !== 'active') return undefined;
        const oidc = oidcPayloadsRepository(trx);
        const sessions = await oidc.destroyAccountSessions(user.id);
        await oidc.revokeAccountTokens(user.id, revokedGrantSeconds);
        if (typeof spent.data?.deviceHash === 'string') await devicesRepository(trx).forgetByHash(user.id, spent.data.deviceHash);
        return { user, sessions };
      });
    },
    /**
     * Spends a password-reset token and, in the same transaction, sets the new hash, kills every other reset
     * link, confirms the address the link went to, ends the account's sessions and revokes its grants and tokens: all
     * or nothing. Undefined when the token is not live, or the account is disabled or changed its address.
     */
    async resetPassword(token: string, passwordHash: string, revokedGrantSeconds: number): Promise<{ user: User; data: Record<string, unknown> | null; sessions: Payload[] } | undefined> {
      return db.transaction(async (trx) => {
        const codes = oneTimeCodesRepository(trx);
        const users = usersRepository(trx);
        const spent = await codes.spend('password_reset', token);
        const user = spent?.userId ? await users.findById(spent.userId) : undefined;
        const sentTo = typeof spent?.data?.email === 'string' ? spent.data.email : undefined;
        if (!spent || !user || user.status !== 'active' || !sentTo || normalizeEmail(sentTo) !== normalizeEmail(user.email)) return undefined;
        await users.setPassword(user.id, passwordHash);
        await codes.revokeAll('password_reset', user.id);
        await users.markEmailVerified(user.id, sentTo);
        const oidc = oidcPayloadsRepository(trx);
        const sessions = await oidc.destroyAccountSessions(user.id);
        await oidc.revokeAccountTokens(user.id, revokedGrantSeconds);
        return { user, data: spent.data, sessions };
      });
    },
  };
}

/** Ends an account's sessions and revokes its grants and tokens (inside the caller's transaction). */
async function endAccess(trx: Db, accountId: string, revokedGrantSeconds: number): Promise<Payload[]> {
  const oidc = oidcPayloadsRepository(trx);
  const sessions = await oidc.destroyAccountSessions(accountId);
  await oidc.revokeAccountTokens(accountId, revokedGrantSeconds);
  return sessions;
}

export type Store = ReturnType<typeof createStore>;
