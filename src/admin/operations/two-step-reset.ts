/**
 * The help-desk reset of a lost second factor (NIST SP 800-63B account recovery). After the help desk has
 * re-proved who the caller is (and says how, with a ticket), every session of the account ends, its
 * refresh and access tokens are revoked, the methods the user lost are removed (and the recovery codes
 * with the last possession method), and a single-use link (24 hours) goes to the account's confirmed
 * address. The link still asks for the password, then a new method and new recovery codes
 * (mail-flows/recover-two-step.ts): the help desk never hands anyone a way in.
 *
 * A reset is the easiest way into an account for whoever talks the help desk into it, so it is refused on
 * any account that holds a console role (an administrator's too: no one resets an administrator's second
 * factor from here), and every address the account had lately is told.
 */
import { redact } from '../../audit/redact.ts';
import { isPossessionMethod, removeMethods } from '../../factors/removal.ts';
import { backupFactor } from '../../factors/index.ts';
import type { Authenticator } from '../../factors/types.ts';
import { languageOf } from '../../i18n.ts';
import { revokedGrantSeconds } from '../../oidc/adapter.ts';
import type { Services } from '../../services.ts';
import { normalizeEmail, type User } from '../../store/users.ts';
import { PRINTABLE, tidy } from '../../text.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';
import { logOutApps } from './provider.ts';
import { findUser, found, view, type UserView } from './user-target.ts';
import { oneLinkMailAMinute } from './users.ts';

/** How long the recovery link works. */
export const TWO_STEP_RESET_TTL_SECONDS = 24 * 3600;
/** How far back an address the account had still counts as one of its addresses (it is told of a reset). */
export const FORMER_ADDRESS_DAYS = 30;

export interface TwoStepResetInput {
  /** The ids of the methods to remove, or `all`: every possession method (the recovery codes go with them). */
  methods: readonly string[] | 'all';
  /** How the help desk re-proved who the caller is ("video call + ID document"). */
  proof: string;
  /** The ticket reference or a note. */
  ticket: string;
}

export interface TwoStepResetResult extends UserView {
  removed: { id: string; kind: string; label: string }[];
  sessionsEnded: number;
  /** Every address told of the reset (the link went to the first, the account's confirmed address). */
  notified: string[];
  linkExpiresAt: Date;
}

const PROOF_MAX = 500;
const TICKET_MAX = 200;

function requiredText(value: unknown, field: 'proof' | 'ticket', max: number, what: string): string {
  const text = typeof value === 'string' ? tidy(value) : '';
  if (!text) throw new OperationError(`two_step_reset.${field}_missing`, `say ${what}`, 400, field);
  if (text.length > max || !PRINTABLE.test(text)) throw new OperationError(`two_step_reset.${field}_invalid`, `at most ${max} printable characters`, 400, field);
  return text;
}

/** The methods the reset removes: the named ones (each a possession method or the recovery codes), or every possession method. */
function chosen(all: readonly Authenticator[], methods: TwoStepResetInput['methods']): Authenticator[] {
  const backup = backupFactor().kind;
  // With none left (a link that expired unused), `all` removes nothing and sends a new link.
  if (methods === 'all') return all.filter(isPossessionMethod);
  if (!methods.length) throw new OperationError('two_step_reset.methods_missing', 'name the methods to remove, or all of them', 400, 'method');
  return [...new Set(methods)].map((id) => {
    const method = all.find((a) => a.id === id);
    if (!method) throw new OperationError('two_step_reset.method_unknown', `the account has no method ${id}`, 404, 'method');
    // The security question is knowledge, never a lost device: it stays (every other method needs it).
    if (!isPossessionMethod(method) && method.kind !== backup) {
      throw new OperationError('two_step_reset.method_kept', `${method.kind} is not a second factor that can be lost: it stays`, 400, 'method');
    }
    return method;
  });
}

/** The account's addresses: the one it has, then those it changed from in the last FORMER_ADDRESS_DAYS days. */
async function addressesOf(services: Services, user: User): Promise<string[]> {
  const out = [user.email];
  for (const e of await services.store.events.forUser(user.id, 100, FORMER_ADDRESS_DAYS)) {
    const from = e.type === 'email.changed' ? e.details?.from : undefined;
    if (typeof from === 'string' && !out.some((a) => normalizeEmail(a) === normalizeEmail(from))) out.push(from);
  }
  return out;
}

export async function resetTwoStep(services: Services, actor: Actor, ref: string, input: TwoStepResetInput): Promise<TwoStepResetResult> {
  const who = actorFields(actor);
  const target = await findUser(services, ref);
  // What the audit row and the user's activity keep of the input (redacted like any state: a pasted secret goes).
  const text = (v: unknown) => (typeof v === 'string' ? tidy(v) : null);
  const record = () => redact({ proof: text(input.proof), ticket: text(input.ticket) }) as Record<string, unknown>;
  return audited(services, actor, {
    action: 'users.reset_two_step',
    target: { type: 'user', id: target?.id ?? ref },
    before: target && { ...view(target), methods: input.methods, ...record() },
    outcome: (r) => ({
      after: { ...record(), removed: r.removed, sessionsEnded: r.sessionsEnded, notified: r.notified.length, linkExpiresAt: r.linkExpiresAt },
      event: {
        type: 'user.two_step_reset', userId: r.id, ...who,
        details: { ...who.details, ...record(), removed: r.removed.map((m) => m.kind), sessionsEnded: r.sessionsEnded },
      },
    }),
  }, async () => {
    authorize(actor, 'users.write'); // before the lookup answers: no one without the right learns who exists
    found(target, ref);
    authorize(actor, 'users.write', target);
    if (target.roles.length) {
      throw new OperationError('two_step_reset.role_holder', `${target.email} holds a console role (${target.roles.join(', ')}): their second factor is never reset by the help desk`, 403);
    }
    requiredText(input.proof, 'proof', PROOF_MAX, 'how you re-proved who the caller is (--proof)');
    requiredText(input.ticket, 'ticket', TICKET_MAX, 'the ticket reference or a note (--ticket)');
    if (target.status !== 'active') throw new OperationError('user.disabled', `${target.email} is disabled: enable the account first`, 409);
    // The link is the way back in: it goes only to an address the owner has proved is theirs.
    if (!target.emailVerifiedAt) throw new OperationError('two_step_reset.email_unverified', `${target.email} is not confirmed: no recovery link goes to it`, 409);
    const removing = chosen(await services.store.authenticators.listForUser(target.id), input.methods);
    await oneLinkMailAMinute(services, 'two-step-reset', target);

    // First, so that whatever happens next, the password alone never completes a sign-in until the mailed
    // link's recovery made a new method (even when nothing is left to ask for as a second step).
    await services.store.users.setRecoveryPending(target.id, true);
    const sessions = await services.store.endAccountAccess(target.id, revokedGrantSeconds(services.config));
    await removeMethods(services.store, target.id, removing);
    // A change of address started in a session that has just ended must not finish now, and an earlier
    // reset's enrolment-only session ends with the rest.
    await services.store.codes.revokeAll('email_change', target.id);
    await services.store.codes.revokeAll('two_step_enrol', target.id);
    await logOutApps(services, target.id, sessions);

    const token = await services.store.codes.issue('two_step_reset', target.id, TWO_STEP_RESET_TTL_SECONDS, { email: target.email });
    const language = languageOf(target);
    const hours = TWO_STEP_RESET_TTL_SECONDS / 3600;
    await services.mailer.send(target.email, 'two-step-reset', { email: target.email, link: `${services.config.issuer}/recover-two-step?token=${token}`, hours }, language);
    const notified = await addressesOf(services, target);
    for (const address of notified.slice(1)) {
      await services.mailer.send(address, 'two-step-reset-notice', { email: target.email, time: new Date() }, language);
    }
    return {
      ...view(target), removed: removing.map((m) => ({ id: m.id, kind: m.kind, label: m.label })), sessionsEnded: sessions.length,
      notified, linkExpiresAt: new Date(Date.now() + TWO_STEP_RESET_TTL_SECONDS * 1000),
    };
  });
}
