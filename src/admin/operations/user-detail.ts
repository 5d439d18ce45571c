/**
 * One user as an administrator looks at them (the console's user page, the API's `GET /users/{id}`): the
 * account, its two-step methods with when each was added and last used (never a secret: no seed, no key,
 * no answer), whether it is locked after failed sign-ins, and its recent security activity. Reading is
 * audited too (`users.show`): who looked at whose account is part of the trail.
 */
import { redact } from '../../audit/redact.ts';
import { isPossessionMethod } from '../../factors/removal.ts';
import { accountKey } from '../../security/attempts.ts';
import type { Services } from '../../services.ts';
import type { Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { findUser, found, view, type UserView } from './user-target.ts';

/** How far back, and how many, of the user's security events the detail carries. */
export const DETAIL_EVENT_DAYS = 90;
export const DETAIL_EVENT_LIMIT = 100;

export interface MethodView {
  id: string;
  kind: string;
  label: string;
  /** A method that gives mfa with the password (one a help-desk reset may remove as lost). */
  possession: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface EventView {
  type: string;
  ip: string | null;
  userAgent: string | null;
  /** The event's details, redacted like an audit row's state. */
  details: Record<string, unknown>;
  createdAt: Date;
}

export interface UserDetail extends UserView {
  emailVerified: boolean;
  /** Too many failed sign-ins: the account is locked until the lock expires or an administrator unlocks it. */
  locked: boolean;
  /** A help-desk reset waits for its mailed link. */
  recoveryPending: boolean;
  methods: MethodView[];
  recoveryCodesLeft: number;
  /** The security events of the last DETAIL_EVENT_DAYS days, newest first, at most DETAIL_EVENT_LIMIT. */
  events: EventView[];
}

export async function showUser(services: Services, actor: Actor, ref: string): Promise<UserDetail> {
  const target = await findUser(services, ref);
  return audited(services, actor, {
    action: 'users.show',
    target: { type: 'user', id: target?.id ?? ref },
  }, async () => {
    authorize(actor, 'users.read'); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, 'users.read', target);
    const { store, config } = services;
    const key = accountKey(target.email);
    const [methods, counters, recoveryCodesLeft, events] = await Promise.all([
      store.authenticators.listForUser(target.id),
      store.counters.get([key]),
      store.codes.countLive('recovery_code', target.id),
      store.events.forUser(target.id, DETAIL_EVENT_LIMIT, DETAIL_EVENT_DAYS),
    ]);
    const failures = counters.get(key);
    return {
      ...view(target),
      emailVerified: !!target.emailVerifiedAt,
      locked: !!failures && failures.count >= config.throttle.lockAfter,
      recoveryPending: !!target.recoveryPendingAt,
      methods: methods.map((m) => ({
        id: m.id, kind: m.kind, label: m.label, possession: isPossessionMethod(m), createdAt: m.createdAt, lastUsedAt: m.lastUsedAt,
      })),
      recoveryCodesLeft,
      events: events.map((e) => ({
        type: e.type, ip: e.ip, userAgent: e.userAgent, createdAt: e.createdAt,
        details: redact(e.details) as Record<string, unknown>,
      })),
    };
  });
}
