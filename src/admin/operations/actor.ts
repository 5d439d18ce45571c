/**
 * Who performs an administrative operation, and from where: the CLI on the server's machine, or a signed-in
 * administrator (the console) or a client (the REST API) over HTTP. Every operation records it in the audit
 * log (audited.ts) and with its security event, so the log says who did what.
 */
import type { AuditEntry } from '../../audit/chain.ts';
import { AppError } from '../../errors.ts';
import type { AdminApiScope } from '../../oidc/admin-api.ts';
import type { Role } from '../../store/users.ts';

/**
 * A client calling the REST API. `clientId` is null only on the audit row of a request refused before any
 * client was known (a token that did not verify: src/admin/api/refusals.ts). What it may do: the scopes
 * of its access token (permissions.ts maps them to permissions), or, for a caller in the server's own
 * process acting for a client (the operations' tests), console roles; either way an API client never
 * grants roles and never changes an account that holds one.
 */
export type ApiActor = { via: 'api'; clientId: string | null; ip: string; userAgent: string | null; requestId?: string }
  & ({ scopes: readonly AdminApiScope[] } | { roles: readonly Role[] });

/**
 * `roles`: what the actor may do (permissions.ts). The CLI runs on the server's machine with its
 * configuration: its operator is an administrator. The console's are the signed-in user's roles; the
 * API's are its token's scopes (ApiActor).
 */
export type Actor =
  | { via: 'cli'; requestId?: string }
  // `acr`: the level of the administrator's console sign-in, recorded with each action.
  | { via: 'console'; userId: string; roles: readonly Role[]; ip: string; userAgent: string | null; acr?: string; requestId?: string }
  | ApiActor;

/** What an event records of the actor: `via`, and the administrator or client and address when there is one. */
export function actorFields(actor: Actor): { ip?: string; userAgent?: string | null; details: Record<string, unknown> } {
  if (actor.via === 'cli') return { details: { via: 'cli' } };
  const who = actor.via === 'console' ? { by: actor.userId } : { byClient: actor.clientId };
  return { ip: actor.ip, userAgent: actor.userAgent, details: { via: actor.via, ...who } };
}

/** The actor's part of an audit log row: a user (console), a client (API) or the CLI. */
export function auditActor(actor: Actor): Pick<AuditEntry, 'actorType' | 'actorId' | 'actorAcr' | 'ip' | 'userAgent' | 'requestId'> {
  const requestId = actor.requestId ?? null;
  switch (actor.via) {
    case 'cli':
      return { actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId };
    case 'console':
      return { actorType: 'user', actorId: actor.userId, actorAcr: actor.acr ?? null, ip: actor.ip, userAgent: actor.userAgent, requestId };
    case 'api':
      return { actorType: 'client', actorId: actor.clientId, actorAcr: null, ip: actor.ip, userAgent: actor.userAgent, requestId };
  }
}

/**
 * An operation refused because of its input (invalid, already there, not found), its actor's roles (403) or a limit (429):
 * the caller shows the message as it is (the CLI as a usage error, the API as a 4xx with a JSON body).
 */
export class OperationError extends AppError {
  override name = 'OperationError';
  /** `field`: the input the message is about (the CLI names its flag, the API its JSON field). */
  constructor(code: string, message: string, status: 400 | 403 | 404 | 409 | 429 = 400, readonly field?: string) {
    super(code, status, message, true);
  }
}
