/** Periodic clean-up of expired rows, on every instance (the deletes are idempotent; the audit log's purge takes the chain's lock). */
import type { Services } from './services.ts';

export async function purgeExpired(services: Services): Promise<Record<string, number>> {
  const { store } = services;
  return {
    oidc: await store.oidc.purge(),
    codes: await store.codes.purge(),
    keys: await store.signingKeys.purge(),
    counters: await store.counters.purge(),
    accountSessions: await store.accountSessions.purge(),
    consoleSessions: await store.consoleSessions.purge(),
    sessionActivity: await store.sessions.purge(),
    pendingSteps: await store.pending.purge(),
    signInProgress: await store.progress.purge(),
    // Used nonces past their window, and phones whose pairing never became a method within a day.
    pushDevices: await store.pushDevices.purge(),
    // Past its retention, from the start of the chain, anchoring the chain on the last row removed.
    auditLog: await store.audit.purge(services.config.audit.retentionDays),
  };
}

export function startPurging(services: Services): () => void {
  const timer = setInterval(() => {
    purgeExpired(services)
      .then((counts) => services.log.debug({ purged: counts }, 'expired rows purged'))
      .catch((err: unknown) => services.log.warn({ err }, 'purge failed'));
  }, services.config.purgeIntervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
