/**
 * Every metric Latchkey exports, in one registry of its own (not prom-client's global one), and the small
 * recording calls the rest of the code makes: one line at each place something happens. The README's
 * "Metrics" section lists them; keep the two in step.
 *
 * Label values are never user input: each comes from a fixed list in code (a route template, a grant type,
 * a factor kind), and anything else becomes `other`, so the number of series stays bounded.
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { Amr, FactorKind } from '../factors/types.ts';
import type { Acr } from '../security/level.ts';

export const registry = new Registry();

/** A label value from a known set, `other` for anything else. */
export function bounded(value: unknown, known: ReadonlySet<string>): string {
  return typeof value === 'string' && known.has(value) ? value : 'other';
}

const signInsStarted = new Counter({
  name: 'latchkey_sign_ins_started_total',
  help: 'Sign-ins started by an authorization request, by the level (acr) the request needs',
  labelNames: ['acr'] as const,
  registers: [registry],
});

const signInsCompleted = new Counter({
  name: 'latchkey_sign_ins_completed_total',
  help: 'Sign-ins completed, by the level reached (acr) and the methods used (amr values, sorted, joined by +)',
  labelNames: ['acr', 'amr'] as const,
  registers: [registry],
});

const signInFailures = new Counter({
  name: 'latchkey_sign_in_failures_total',
  help: 'First steps of a sign-in refused (wrong password, unknown account, refused passkey), by method',
  labelNames: ['method'] as const,
  registers: [registry],
});

const secondSteps = new Counter({
  name: 'latchkey_second_steps_total',
  help: 'Second steps answered, by method kind and outcome (verified, failed)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

const refusals = new Counter({
  name: 'latchkey_sign_in_refusals_total',
  help: 'Attempts refused by the failure limits before any check: throttled (wait), locked (until a reset by email)',
  labelNames: ['reason'] as const,
  registers: [registry],
});

const smsSends = new Counter({
  name: 'latchkey_sms_total',
  help: 'Text messages handed to the SMS provider, by provider and outcome (sent, failed)',
  labelNames: ['provider', 'outcome'] as const,
  registers: [registry],
});

const pushSends = new Counter({
  name: 'latchkey_push_total',
  help: 'Web Push messages to the phone app, by outcome (sent, gone: the device unsubscribed, failed)',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

const mails = new Counter({
  name: 'latchkey_mail_total',
  help: 'Emails, by outcome (sent, failed) and transport (smtp, log)',
  labelNames: ['outcome', 'transport'] as const,
  registers: [registry],
});

/** Each list is typed against the values it bounds, so a new level, amr value or factor kind fails to compile here. */
const keys = <K extends string>(all: Record<K, true>) => new Set<string>(Object.keys(all));
const ACRS = keys<Acr>({ 'urn:latchkey:acr:1fa': true, 'urn:latchkey:acr:mfa': true, phr: true });
const AMRS = keys<Amr>({ pwd: true, kba: true, otp: true, sms: true, mca: true, hwk: true, swk: true, user: true, mfa: true, rba: true });
const KINDS = keys<FactorKind>({
  password: true, 'security-question': true, totp: true, sms: true, push: true, webauthn: true, 'security-key': true, 'recovery-code': true,
});
/** The first step's methods in `sign_in.failed` events (interaction/sign-in.ts). */
const FIRST_STEP_METHODS = new Set(['pwd', 'passkey']);
const SMS_PROVIDERS = new Set(['log', 'webhook', 'twilio']);

/** amr as one label value: known values only, sorted, joined by `+` (e.g. `mfa+otp+pwd`). */
function amrLabel(amr: unknown): string {
  if (!Array.isArray(amr) || amr.length === 0) return 'none';
  return [...new Set(amr.map((m) => bounded(m, AMRS)))].sort().join('+');
}

/** The recording calls made where things happen. */
export const metrics = {
  signInStarted(acr: string): void {
    signInsStarted.inc({ acr: bounded(acr, ACRS) });
  },
  /** Security events (events.ts) that are also numbers to watch: one hook covers them all. */
  securityEvent(type: string, details: Readonly<Record<string, unknown>>): void {
    switch (type) {
      case 'sign_in.succeeded':
        return signInsCompleted.inc({ acr: bounded(details.acr, ACRS), amr: amrLabel(details.amr) });
      case 'sign_in.failed':
        return signInFailures.inc({ method: bounded(details.method, FIRST_STEP_METHODS) });
      case 'two_step.failed':
        return secondSteps.inc({ kind: bounded(details.kind, KINDS), outcome: 'failed' });
      case 'two_step.verified':
        return secondSteps.inc({ kind: bounded(details.kind, KINDS), outcome: 'verified' });
    }
  },
  refused(locked: boolean): void {
    refusals.inc({ reason: locked ? 'locked' : 'throttled' });
  },
  sms(provider: string, outcome: 'sent' | 'failed'): void {
    smsSends.inc({ provider: bounded(provider, SMS_PROVIDERS), outcome });
  },
  /** A push service's answer (delivery/push.ts): undefined when it could not be reached or the message never left. */
  pushAnswered(status: number | undefined): void {
    const outcome = status === 404 || status === 410 ? 'gone' : status !== undefined && status >= 200 && status < 300 ? 'sent' : 'failed';
    pushSends.inc({ outcome });
  },
  /** An email sent or failed (delivery/mail.ts): each attempt counts, a retried failure once per attempt. */
  mail(outcome: 'sent' | 'failed', transport: 'smtp' | 'log' = 'smtp'): void {
    mails.inc({ outcome, transport });
  },
};

let defaultsStarted = false;

/** The process metrics and event-loop lag (prom-client's defaults): started once, by a process that is scraped. */
export function collectProcessMetrics(): void {
  if (defaultsStarted) return;
  defaultsStarted = true;
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
}
