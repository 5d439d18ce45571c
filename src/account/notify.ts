/**
 * Security notices by email (password changed, email changed, two-step setting changed). The change is
 * already made when the notice goes out, so a mail failure is logged loudly but does not undo or hide it.
 * The notice is in the user's language (i18n.ts `languageOf`); words in `vars` that need translating are
 * given as a function, which runs in that language.
 */
import type { MailTemplate } from '../delivery/mail.ts';
import { languageOf, withLanguage } from '../i18n.ts';
import type { User } from '../store/users.ts';
import type { AccountDeps } from './context.ts';

type Vars = Record<string, unknown>;

/** Mails `user.email` (the address the user has now, or had: the caller's User says which). */
export async function notify(deps: AccountDeps, user: Pick<User, 'email' | 'language'>, template: MailTemplate, vars: Vars | (() => Vars) = {}): Promise<void> {
  const language = languageOf(user);
  try {
    const words = typeof vars === 'function' ? withLanguage(language, vars) : vars;
    await deps.mailer.send(user.email, template, { time: new Date(), ...words }, language);
  } catch (err) {
    deps.log.error({ err, template }, 'security notice could not be sent');
  }
}
