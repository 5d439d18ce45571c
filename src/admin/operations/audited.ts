/**
 * Runs an operation so that it leaves one row in the audit log, with its actor, whatever its outcome:
 * `ok`; `denied` when the operation's own checks refused it (an OperationError, or another error whose
 * message is meant for the caller: a 4xx AppError), with the code and message as the reason; `error` for
 * anything else, with the error's name only (the server log has the rest). Before and after are redacted
 * (src/audit/redact.ts) on the way in.
 *
 * The security event an operation records (the user's activity when it is about a user) is written in
 * the same transaction as its audit row: an action on a user is mirrored into that user's security
 * activity. Only what went through is mirrored; a refusal is in the audit log alone.
 */
import type { AuditEntry, AuditResult } from '../../audit/chain.ts';
import { redact, storableText } from '../../audit/redact.ts';
import { AppError } from '../../errors.ts';
import type { EventInput } from '../../events.ts';
import type { Services } from '../../services.ts';
import { auditActor, type Actor } from './actor.ts';

export interface AuditTarget {
  /** `user`, `client`, `signing_key`, `audit_log`, `database` */
  type: string;
  id?: string | null | undefined;
}

export interface Audit<T> {
  /** `users.add`, `clients.remove`, …: the CLI's command, dotted. */
  action: string;
  /** What the action is on; its id may come with the result (outcome). */
  target: AuditTarget;
  /** The target's state before the action (redacted on the way in). */
  before?: unknown;
  /** What the result leaves in the log: the target's id, its state after, and the security event to mirror. */
  outcome?: (result: T) => { targetId?: string | undefined; after?: unknown; event?: EventInput | undefined };
}

export async function audited<T>(services: Services, actor: Actor, audit: Audit<T>, run: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await run();
  } catch (err) {
    const denied = err instanceof AppError && err.expose && err.status < 500;
    try {
      await append(services, actor, audit, denied ? 'denied' : 'error', reasonOf(err, denied));
    } catch (auditErr) {
      // The operation's own error is the one the caller must see; the log keeps the audit's.
      services.log.error({ err: auditErr, action: audit.action }, 'audit log append failed');
    }
    throw err;
  }
  const outcome = audit.outcome?.(result) ?? {};
  await append(services, actor, audit, 'ok', null, outcome);
  return result;
}

function reasonOf(err: unknown, denied: boolean): string {
  if (denied) return `${(err as AppError).code}: ${(err as AppError).message}`;
  const e = err as { name?: unknown; code?: unknown };
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  return typeof e?.code === 'string' ? `${name} (${e.code})` : name;
}

async function append<T>(
  services: Services, actor: Actor, audit: Audit<T>, result: AuditResult, reason: string | null,
  outcome: ReturnType<NonNullable<Audit<T>['outcome']>> = {},
): Promise<void> {
  const entry: AuditEntry = {
    ...auditActor(actor),
    action: audit.action,
    targetType: audit.target.type,
    targetId: outcome.targetId ?? audit.target.id ?? null,
    result,
    reason: reason === null ? null : storableText(reason, 1000),
    before: audit.before === undefined ? null : redact(audit.before),
    after: outcome.after === undefined ? null : redact(outcome.after),
  };
  const mirror = outcome.event ? services.events.logged(outcome.event) : undefined;
  const row = await services.store.audit.append(entry, mirror);
  services.log.info({ audit: { seq: row.seq, action: row.action, result: row.result, actor: row.actorType, actorId: row.actorId, target: row.targetId } }, 'audit');
}
