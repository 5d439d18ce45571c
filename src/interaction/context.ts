/** What the interaction steps share: narrow dependencies and the per-request interaction state. */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Mailer } from '../delivery/mail.ts';
import type { PushSender } from '../delivery/push.ts';
import type { SmsSender } from '../delivery/sms.ts';
import type { Events } from '../events.ts';
import type { PasswordHasher } from '../factors/password.ts';
import type { Attempts } from '../security/attempts.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Render } from '../http/render.ts';
import type { GeoIp } from '../geoip.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/index.ts';

export interface InteractionDeps {
  config: Config;
  store: Store;
  events: Events;
  hasher: PasswordHasher;
  attempts: Attempts;
  render: Render;
  csrf: Csrf;
  provider: () => Provider;
  /** For the emails with single-use links (verification, reset) and the notices around them. */
  mailer: Mailer;
  log: Logger;
  sms: SmsSender;
  push: PushSender;
  geoip: GeoIp | undefined;
}

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

export interface InteractionState {
  details: InteractionDetails;
  form: Record<string, string>;
  clientName: string | undefined;
  /** The app's logo (https only), for a phone prompt. */
  clientLogo?: string | null;
  clientMinimumAcr: string | undefined;
}

export type InteractionContext = Context & { state: InteractionState };
