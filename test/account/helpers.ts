/** Driving the account page with the cookie-keeping HTTP client. */
import assert from 'node:assert/strict';
import { formsOf, type CookieClient, type Page } from '../helpers/browser.ts';

export interface Credentials {
  email: string;
  password: string;
}

/** Opens `path` without an account session, signs in on the page the browser is sent to, lands back on `path`. */
export async function signInToAccount(browser: CookieClient, user: Credentials, path = '/account'): Promise<Page> {
  const login = await browser.follow(path);
  assert.equal(login.status, 200, `sign-in page expected, got ${login.status} at ${login.url}`);
  assert.match(login.body, /\/login"/, 'the sign-in page');
  const page = await browser.submit(login, '/login', { email: user.email, password: user.password });
  assert.equal(page.status, 200, `the account page expected, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
  assert.equal(new URL(page.url).pathname, path);
  assert.match(page.body, /Signed in as/);
  return page;
}

/** The hidden fields of the form whose action is exactly `action`. */
export function formFields(page: Page, action: string): Record<string, string> {
  const form = formsOf(page.body).find((f) => f.action === action);
  if (!form) throw new Error(`no form with action ${action} on ${page.url}`);
  return form.hidden;
}

/** Every hidden value of forms with this action (e.g. each session's id on the sessions page). */
export function allFormFields(page: Page, action: string): Record<string, string>[] {
  return formsOf(page.body).filter((f) => f.action === action).map((f) => f.hidden);
}

/** Submits the form with this action on `page` (its hidden fields plus `fields`), following redirects. */
export function post(browser: CookieClient, page: Page, action: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return browser.follow(action, { form: { ...formFields(page, action), ...fields }, headers });
}

/** Every hop of a request and its redirects on our origin (to look at the headers of each). */
export async function hops(browser: CookieClient, url: string, init: Parameters<CookieClient['request']>[1] = {}): Promise<Page[]> {
  const pages = [await browser.request(url, init)];
  for (let i = 0; i < 20; i++) {
    const last = pages.at(-1)!;
    const location = last.headers.get('location');
    if (last.status < 300 || last.status >= 400 || !location) return pages;
    const next = new URL(location, last.url);
    if (next.origin !== browser.origin) return pages;
    pages.push(await browser.request(next.toString()));
  }
  throw new Error('too many redirects');
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
