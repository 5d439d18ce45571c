/**
 * A first-party app's cookies, scoped to its path (http/signed-cookies.ts): `lk.<id>` (its session id)
 * and `lk.<id>.flow` (a sign-in in progress). SameSite=Lax: the callback arrives as a top-level redirect.
 */
import type { Config } from '../config.ts';
import { signedCookies } from '../http/signed-cookies.ts';
import type { FirstPartyApp } from './app.ts';

export const sessionCookie = (app: FirstPartyApp) => `lk.${app.id}`;
export const flowCookie = (app: FirstPartyApp) => `lk.${app.id}.flow`;

export const appCookies = (config: Config, app: FirstPartyApp) => signedCookies(config, app.path);
