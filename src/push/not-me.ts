/**
 * The mail after "This wasn't me" on the phone: someone who knows the password tried to sign in, and the
 * owner said no. It names the attempt (the app, the browser and system, the masked address, the time) and
 * links to what the owner does next, through the routes that exist already: change the password on the
 * account page, or sign out everywhere (the "This wasn't me" link of mail-flows/not-me.ts, which ends every
 * session and token and leads on to choosing a new password). Prompts are paused meanwhile (prompts.ts).
 */
import type { Mailer } from '../delivery/mail.ts';
import type { Config } from '../config.ts';
import { languageOf, withLanguage } from '../i18n.ts';
import { NOT_ME_TTL_SECONDS } from '../interaction/complete.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';
import type { PendingRow } from '../store/pending-steps.ts';
import type { PushDevice } from '../store/push-devices.ts';
import type { User } from '../store/users.ts';
import type { PromptOrigin } from './prompts.ts';

export interface NotMeMailDeps {
  config: Config;
  store: Store;
  mailer: Mailer;
  log: Logger;
}

export async function mailPushNotMe(deps: NotMeMailDeps, user: User, device: PushDevice, row: PendingRow): Promise<void> {
  const origin = row.data.origin as PromptOrigin;
  const token = await deps.store.codes.issue('not_me', user.id, NOT_ME_TTL_SECONDS, { via: 'push' });
  const language = languageOf(user);
  await deps.mailer.send(user.email, 'push-not-me', withLanguage(language, () => ({
    phone: device.name,
    app: origin.client.name || deps.config.productName,
    device: `${origin.browser}, ${origin.os}`,
    place: [origin.place.ip, origin.place.country].filter(Boolean).join(', '),
    time: new Date(typeof row.data.createdAt === 'string' ? row.data.createdAt : Date.now()),
    pausedMinutes: Math.round(deps.config.twoStep.push.pauseAfterNotMeSeconds / 60),
    passwordLink: `${deps.config.issuer}/account/password`,
    notMeLink: `${deps.config.issuer}/not-me?token=${token}`,
  })), language);
}
