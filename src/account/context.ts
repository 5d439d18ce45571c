/** What the account page's steps share: narrow dependencies and the per-request state. */
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Mailer } from '../delivery/mail.ts';
import type { PushSender } from '../delivery/push.ts';
import type { SmsSender } from '../delivery/sms.ts';
import type { Events } from '../events.ts';
import type { PasswordHasher } from '../factors/password.ts';
import type { Csrf } from '../http/csrf.ts';
import type { Render } from '../http/render.ts';
import type { Attempts } from '../security/attempts.ts';
import type { GeoIp } from '../geoip.ts';
import type { Logger } from '../log.ts';
import type { AccountSession } from '../store/account-sessions.ts';
import type { Store } from '../store/index.ts';
import type { User } from '../store/users.ts';

export interface AccountDeps {
  config: Config;
  store: Store;
  events: Events;
  hasher: PasswordHasher;
  attempts: Attempts;
  mailer: Mailer;
  render: Render;
  csrf: Csrf;
  log: Logger;
  sms: SmsSender;
  push: PushSender;
  geoip: GeoIp | undefined;
  provider: () => Provider;
}

export interface AccountState {
  /** The submitted form (POST), read and CSRF-checked. */
  form: Record<string, string>;
  /** Set by `requireAccount`: the account session and its (active) user. */
  account: AccountSession;
  user: User;
}

export type AccountContext = Context & { state: AccountState };

/** Where and from what a request came, for security events. */
export { requestMeta } from '../http/request-meta.ts';
