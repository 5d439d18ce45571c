/**
 * A first-party app's cookies, scoped to its path (http/signed-cookies.ts): `lk.<id>` (its session id,
 * SameSite as the app says: Lax for the account page, Strict for the console) and `lk.<id>.flow` (a sign-in
 * in progress). The flow cookie is always Lax: the callback arrives as a top-level redirect from the
 * provider, which may end a chain another site began (a link to a console page); it carries no session,
 * only the state and PKCE verifier that make the callback one this browser started.
 */
import type { Config } from '../config.ts';
import { signedCookies } from '../http/signed-cookies.ts';
import type { FirstPartyApp } from './app.ts';

export const sessionCookie = (app: FirstPartyApp) => `lk.${app.id}`;
export const flowCookie = (app: FirstPartyApp) => `lk.${app.id}.flow`;

/** The flow cookie's jar (Lax). */
export const appCookies = (config: Config, app: FirstPartyApp) => signedCookies(config, app.path);

/** The session cookie's jar, and any other cookie of the app's own pages (SameSite as the app says). */
export const sessionCookies = (config: Config, app: FirstPartyApp) => signedCookies(config, app.path, { sameSite: app.sessionSameSite ?? 'lax' });
