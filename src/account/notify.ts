/**
 * Security notices by email (password changed, email changed, two-step setting changed). The change is
 * already made when the notice goes out, so a mail failure is logged loudly but does not undo or hide it.
 */
import type { MailTemplate } from '../delivery/mail.ts';
import type { AccountDeps } from './context.ts';

export async function notify(deps: AccountDeps, to: string, template: MailTemplate, vars: Record<string, unknown> = {}): Promise<void> {
  try {
    await deps.mailer.send(to, template, { time: new Date().toUTCString(), ...vars });
  } catch (err) {
    deps.log.error({ err, template }, 'security notice could not be sent');
  }
}
