/** Records a security event: into the store (the audit trail and the user's activity feed) and the log. */
import type { Logger } from './log.ts';
import { metrics } from './metrics/registry.ts';
import type { Store } from './store/index.ts';
import type { SecurityEvent } from './store/security-events.ts';

export type EventType =
  | 'sign_in.succeeded' | 'sign_in.failed' | 'sign_in.unmet_level' | 'sign_in.throttled'
  | 'admin.setup' | 'user.created' | 'client.created' | 'client.removed' | 'keys.rotated'
  | 'client.updated' | 'client.secret_rotated' | 'client.disabled' | 'client.enabled' | 'keys.retired'
  | 'sign_up.existing_email' | 'sign_in.unverified' | 'email.verification_sent' | 'email.verified'
  | 'password_reset.requested' | 'password_reset.link_sent' | 'password_reset.completed'
  // the account page
  | 'profile.updated' | 'email.change_requested' | 'email.changed' | 'password.changed' | 'password.change_failed'
  | 'verification.changed' | 'session.signed_out' | 'sessions.signed_out_others' | 'app.access_removed'
  // two-step verification
  | 'sign_in.second_step' | 'two_step.verified' | 'two_step.failed'
  | 'two_step.added' | 'two_step.changed' | 'two_step.renamed' | 'two_step.removed' | 'recovery_codes.generated' | 'recovery_code.used'
  | 'device.forgotten' | 'account.not_me'
  // the phone app (push/api.ts)
  | 'push.approved' | 'push.denied' | 'push.denied_not_me' | 'push.signed_out'
  // administrators acting on the user (admin/operations/)
  | 'user.invited' | 'user.invite_accepted' | 'user.disabled' | 'user.enabled' | 'user.unlocked' | 'user.deleted'
  | 'user.roles_changed' | 'user.sessions_revoked' | 'user.session_revoked' | 'password_reset.link_sent_by_admin'
  // the help-desk reset of a lost second factor, and its link (mail-flows/recover-two-step.ts)
  | 'user.two_step_reset' | 'two_step_reset.password_failed' | 'two_step_reset.link_used' | 'two_step_reset.completed';

export interface EventInput {
  type: EventType;
  userId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  /** Never a secret: reasons, client ids, methods. */
  details?: Record<string, unknown>;
}

export function createEvents(store: Store, log: Logger) {
  /** The event as it is stored, logged: for a caller that stores it in a transaction of its own (the audit log's mirror). */
  const logged = (e: EventInput): SecurityEvent => {
    const event = { userId: e.userId ?? null, type: e.type, ip: e.ip ?? null, userAgent: e.userAgent ?? null, details: e.details ?? {} };
    log.info({ event: { type: event.type, userId: event.userId, ip: event.ip, details: event.details } }, 'security event');
    metrics.securityEvent(event.type, event.details);
    return event;
  };
  return {
    logged,
    async record(e: EventInput): Promise<void> {
      await store.events.insert(logged(e));
    },
  };
}

export type Events = ReturnType<typeof createEvents>;
