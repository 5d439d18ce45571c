/**
 * Email: one of the only modules that talks to the outside world. Each message is a template rendered
 * as plain text and simple HTML. With no SMTP URL (development and tests only; production refuses to
 * start) messages, links included, go to the log instead.
 *
 * Every message is written in the language its caller passes: the recipient's (i18n.ts `languageOf`), so
 * words that the caller put in `vars` must be translated inside `withLanguage` of the same language. A Date
 * in `vars` is written as a time in that language, in UTC.
 *
 * A mail server that is down or does not answer never holds a request: every wait of nodemailer is bounded
 * (SMTP_TIMEOUTS), `send` waits for the first attempt for at most FIRST_ATTEMPT_WAIT_MS, and a failed
 * attempt is retried in this process after each of RETRY_DELAYS_MS (about four minutes in all), then given
 * up; a permanent refusal (a 5xx reply: no such recipient, message refused) is given up at once, since
 * the same message would be refused again. Each attempt's outcome is counted (metrics
 * `latchkey_mail_total`) and each failure logged with the template, the SMTP command and reply code, never
 * the server's reply text (it often quotes the recipient's address), the address, the subject or the body
 * (links are secrets). Delivery is at least once: an attempt whose reply to the message was lost counts as
 * failed and is retried, so that message may arrive twice.
 * Retries live in memory: a message still waiting, or still in an attempt, when the process stops is
 * logged as not delivered (an outbox table would keep it; every mailed link can be asked for again, so
 * none is needed yet).
 */
import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import { withLanguage } from '../i18n.ts';
import { createRenderer, timeText } from '../http/render.ts';
import type { Logger } from '../log.ts';
import { metrics } from '../metrics/registry.ts';

export type MailTemplate = 'verify-email' | 'reset-password' | 'email-changed' | 'password-changed' | 'new-sign-in' | 'signup-existing'
  | 'confirm-email-change' | 'email-change-requested' | 'verification-changed' | 'two-step-changed' | 'recovery-code-used' | 'invite'
  | 'push-not-me' | 'two-step-reset' | 'two-step-reset-notice';

export interface Mailer {
  /**
   * Renders the message and hands it to the mail server: resolves once it is accepted, or once the first
   * attempt failed or took FIRST_ATTEMPT_WAIT_MS (the attempt and its retries go on). Throws only when the
   * message cannot be made (a template error).
   */
  send(to: string, template: MailTemplate, vars: Record<string, unknown>, language: string): Promise<void>;
  /**
   * Stops retrying and waits at most CLOSE_WAIT_MS for attempts in flight; every message not confirmed
   * delivered by then (waiting for a retry, or in an attempt) is logged as not delivered.
   */
  close(): Promise<void>;
}

interface Message {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** nodemailer's waits, bounded (its defaults are 2 minutes to connect and 10 of silence). */
const SMTP_TIMEOUTS = { connectionTimeout: 5_000, greetingTimeout: 5_000, socketTimeout: 15_000, dnsTimeout: 5_000 };
/** How long `send` waits for the first attempt before leaving it to run on. */
export const FIRST_ATTEMPT_WAIT_MS = 2_000;
/** After a failed attempt, the next one comes after the next of these delays; after the last, the message is given up. */
export const RETRY_DELAYS_MS: readonly number[] = [2_000, 10_000, 30_000, 60_000, 120_000];
/** Messages waiting for a retry at most: a mail server down for long must not fill the memory. */
const MAX_WAITING = 1000;
/** How long `close` waits for attempts in flight. */
const CLOSE_WAIT_MS = 5_000;

/**
 * What a failed attempt may say in the log: nodemailer's error code (and the system's, such as
 * ECONNREFUSED), the SMTP command and reply code, whether the refusal is permanent. Never the server's reply
 * or nodemailer's message, which quotes it: "550 5.1.1 <someone@example.com>: Recipient address rejected".
 */
function failure(err: unknown): Record<string, unknown> {
  const e = err as { code?: unknown; originalCode?: unknown; command?: unknown; responseCode?: unknown; permanent?: unknown };
  return {
    error: typeof e?.code === 'string' ? e.code : undefined,
    cause: typeof e?.originalCode === 'string' ? e.originalCode : undefined,
    command: typeof e?.command === 'string' ? e.command : undefined,
    responseCode: typeof e?.responseCode === 'number' ? e.responseCode : undefined,
    permanent: e?.permanent === true ? true : undefined,
  };
}

export function createMailer(config: Config, log: Logger): Mailer {
  const html = createRenderer(config);
  const text = createRenderer(config, { autoescape: false });
  const transport = config.mail.smtpUrl ? nodemailer.createTransport({ url: config.mail.smtpUrl, ...SMTP_TIMEOUTS }) : undefined;
  const common = { productName: config.productName, accountUrl: `${config.issuer}/account` };
  /** Retries waiting (their timers, with what to log if they never run) and attempts in flight. */
  const waiting = new Map<NodeJS.Timeout, string>();
  const inFlight = new Map<Promise<void>, { template: MailTemplate; reported: boolean }>();
  let closed = false;

  /** One attempt to deliver `message`; on failure the next is scheduled, or the message given up. */
  const attempt = (message: Message, template: MailTemplate, n: number): Promise<void> => {
    const state = { template, reported: false };
    const run = transport!.sendMail(message).then(
      () => {
        metrics.mail('sent');
        if (n > 0) log.info({ mail: { template, attempts: n + 1 } }, 'email delivered after retrying');
      },
      (err: unknown) => {
        metrics.mail('failed');
        if (state.reported) return; // close() has logged it as not delivered
        if ((err as { permanent?: unknown })?.permanent === true) {
          log.error({ mail: { template, attempts: n + 1, ...failure(err) } }, 'email not delivered: refused by the mail server');
          return;
        }
        const delay = RETRY_DELAYS_MS[n];
        if (delay === undefined || closed || waiting.size >= MAX_WAITING) {
          log.error({ mail: { template, attempts: n + 1, ...failure(err) } }, 'email not delivered: given up');
          return;
        }
        log.warn({ mail: { template, attempt: n + 1, retryInSeconds: delay / 1000, ...failure(err) } }, 'email not delivered: will retry');
        const timer = setTimeout(() => {
          waiting.delete(timer);
          void attempt(message, template, n + 1);
        }, delay);
        waiting.set(timer, template);
      },
    );
    inFlight.set(run, state);
    void run.finally(() => inFlight.delete(run));
    return run;
  };

  return {
    async send(to, template, vars, language) {
      const message = withLanguage(language, () => {
        const all = { ...common, ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, v instanceof Date ? timeText(v) : v])) };
        return {
          from: config.mail.from,
          to,
          subject: text(`mail/${template}.subject.njk`, all).trim(),
          text: text(`mail/${template}.txt.njk`, all),
          html: html(`mail/${template}.html.njk`, all),
        };
      });
      if (!transport) {
        log.info({ mail: { to, subject: message.subject, body: message.text } }, 'email (no SMTP configured: written to the log)');
        metrics.mail('sent', 'log');
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([attempt(message, template, 0), new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_ATTEMPT_WAIT_MS)))]);
      clearTimeout(timer);
    },
    async close() {
      closed = true;
      for (const [timer, template] of waiting) {
        clearTimeout(timer);
        log.error({ mail: { template } }, 'email not delivered: the server stopped while it waited for a retry');
      }
      waiting.clear();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...inFlight.keys()]), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS).unref()))]);
      clearTimeout(timer);
      // An attempt longer than the wait (a mail server that answers slowly: its bounds add up past it).
      for (const state of inFlight.values()) {
        state.reported = true;
        log.error({ mail: { template: state.template } }, 'email not delivered: the server stopped during an attempt (not confirmed)');
      }
      inFlight.clear();
      transport?.close();
    },
  };
}
