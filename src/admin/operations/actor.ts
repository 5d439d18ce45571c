/**
 * Who performs an administrative operation, and from where: the CLI on the server's machine, or a signed-in
 * administrator (the console) or a client (the REST API) over HTTP. Every operation records it with its
 * security event, so the audit log says who did what.
 */
import { AppError } from '../../errors.ts';

export type Actor =
  | { via: 'cli' }
  | { via: 'console'; userId: string; ip: string; userAgent: string | null }
  | { via: 'api'; clientId: string; ip: string; userAgent: string | null };

/** What an event records of the actor: `via`, and the administrator or client and address when there is one. */
export function actorFields(actor: Actor): { ip?: string; userAgent?: string | null; details: Record<string, unknown> } {
  if (actor.via === 'cli') return { details: { via: 'cli' } };
  const who = actor.via === 'console' ? { by: actor.userId } : { byClient: actor.clientId };
  return { ip: actor.ip, userAgent: actor.userAgent, details: { via: actor.via, ...who } };
}

/**
 * An operation refused because of its input (invalid, already there, not found): the caller shows the
 * message as it is (the CLI as a usage error, the API as a 4xx with a JSON body).
 */
export class OperationError extends AppError {
  override name = 'OperationError';
  /** `field`: the input the message is about (the CLI names its flag, the API its JSON field). */
  constructor(code: string, message: string, status: 400 | 404 | 409 = 400, readonly field?: string) {
    super(code, status, message, true);
  }
}
