/**
 * The account page's cookies, scoped to /account (http/signed-cookies.ts): `lk.account` (the account
 * session id) and `lk.account.flow` (a sign-in in progress). SameSite=Lax: the callback arrives as a
 * top-level redirect.
 */
import type { Config } from '../config.ts';
import { signedCookies } from '../http/signed-cookies.ts';

export const SESSION_COOKIE = 'lk.account';
export const FLOW_COOKIE = 'lk.account.flow';

export const accountCookies = (config: Config) => signedCookies(config, '/account');

export type AccountCookies = ReturnType<typeof accountCookies>;
