/**
 * Email: one of the only modules that talks to the outside world. Each message is a template rendered
 * as plain text and simple HTML. With no SMTP URL (development and tests only; production refuses to
 * start) messages, links included, go to the log instead.
 *
 * Every message is written in the language its caller passes: the recipient's (i18n.ts `languageOf`), so
 * words that the caller put in `vars` must be translated inside `withLanguage` of the same language. A Date
 * in `vars` is written as a time in that language, in UTC.
 */
import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import { withLanguage } from '../i18n.ts';
import { createRenderer, timeText } from '../http/render.ts';
import type { Logger } from '../log.ts';

export type MailTemplate = 'verify-email' | 'reset-password' | 'email-changed' | 'password-changed' | 'new-sign-in' | 'signup-existing'
  | 'confirm-email-change' | 'email-change-requested' | 'verification-changed' | 'two-step-changed' | 'recovery-code-used' | 'invite'
  | 'push-not-me' | 'two-step-reset' | 'two-step-reset-notice';

export interface Mailer {
  send(to: string, template: MailTemplate, vars: Record<string, unknown>, language: string): Promise<void>;
  close(): void;
}

export function createMailer(config: Config, log: Logger): Mailer {
  const html = createRenderer(config);
  const text = createRenderer(config, { autoescape: false });
  const transport = config.mail.smtpUrl ? nodemailer.createTransport(config.mail.smtpUrl) : undefined;
  const common = { productName: config.productName, accountUrl: `${config.issuer}/account` };
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
        return;
      }
      await transport.sendMail(message);
    },
    close() {
      transport?.close();
    },
  };
}
