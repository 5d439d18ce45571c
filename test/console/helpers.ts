/**
 * Driving the admin console from tests: a user with console roles and an authenticator app in the store,
 * signed into the console through /auth (the password, then a TOTP code) with the cookie-keeping HTTP
 * client or a playwright page, and the step-up a sensitive action asks for.
 */
import assert from 'node:assert/strict';
import type { Page as BrowserPage } from 'playwright-core';
import type { Role } from '../../src/store/users.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import type { TestServer } from '../helpers/server.ts';
import { addTotp, awaitFreshStep, nowSeconds, totpCode } from '../helpers/two-step.ts';

export interface ConsolePerson {
  id: string;
  email: string;
  password: string;
  /** The authenticator app's key (for codes at later step-ups) and its method's id. */
  totpKey: Buffer;
  totpId: string;
  roles: Role[];
}

/** A new user (`<prefix><n>@example.com`) with a password, an authenticator app and these console roles. */
export async function consoleUser(server: TestServer, roles: Role[], prefix = 'console'): Promise<ConsolePerson> {
  const user = await server.newUser(prefix);
  const { store } = server.server.services;
  if (roles.length) await store.users.changeRoles(user.id, { grant: roles });
  const totp = await addTotp(store, user.id, 'Admin phone');
  return { ...user, totpKey: totp.key, totpId: totp.id, roles };
}

/**
 * A code of the person's authenticator app the server will take now: the method's last used step is
 * cleared first, so a test can sign in again within one 30-second step (replay protection has its own tests).
 */
export async function totpNow(server: TestServer, person: ConsolePerson): Promise<string> {
  await awaitFreshStep(5);
  await server.server.services.database.knex('authenticators').where({ id: person.totpId }).update({ last_step: null });
  return totpCode(person.totpKey, nowSeconds());
}

/** From the provider's sign-in page (password), through the TOTP step, to wherever the sign-in returns. */
export async function throughSignIn(browser: CookieClient, server: TestServer, person: ConsolePerson, login: Page): Promise<Page & { stoppedAt?: string }> {
  assert.match(login.body, /\/login"/, `the sign-in page expected, got ${login.status} at ${login.url}: ${login.body.slice(0, 300)}`);
  const step = await browser.submit(login, '/login', { email: person.email, password: person.password });
  assert.match(step.body, /name="code"/, `the authenticator app's step expected, got ${step.status} at ${step.url}: ${step.body.slice(0, 300)}`);
  const form = findForm(step.body, '/verify');
  return browser.follow(new URL(form.action, step.url).toString(), { form: { ...form.hidden, code: await totpNow(server, person) } });
}

/** A cookie-keeping client signed into the console (ends on /admin, or on `path` when given). */
export async function signInConsole(server: TestServer, person: ConsolePerson, path = '/admin', browser = new CookieClient(server.url)): Promise<CookieClient> {
  const page = await throughSignIn(browser, server, person, await browser.follow(path));
  assert.equal(page.status, 200, `the console expected, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
  assert.equal(new URL(page.url).pathname, path);
  assert.match(page.body, /id="signed-in-as"/);
  return browser;
}

/** Opens `path` (a page behind a step-up) and confirms it's them (password, a new code); the page at `path`. */
export async function stepUpConsole(browser: CookieClient, server: TestServer, person: ConsolePerson, path: string): Promise<Page> {
  const login = await browser.follow(path);
  if (new URL(login.url).pathname === path && login.status === 200) return login;
  const page = await throughSignIn(browser, server, person, login);
  assert.equal(new URL(page.url).pathname, path, `back at ${path} expected, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
  return page;
}

/** The same sign-in in Chromium: opens `path`, signs in with the password and a code, waits to be back there. */
export async function signInConsolePage(page: BrowserPage, server: TestServer, person: ConsolePerson, path = '/admin'): Promise<void> {
  await page.goto(`${server.url}${path}`);
  await page.getByLabel('Email').fill(person.email);
  await page.getByLabel('Password', { exact: true }).fill(person.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('input[name="code"]').waitFor();
  await page.locator('input[name="code"]').fill(await totpNow(server, person));
  await page.locator('form[action$="/verify"] button[type="submit"]').first().click();
  await page.waitForURL((u) => u.pathname === path);
  await page.locator('#signed-in-as').waitFor();
}

/**
 * Time passes for the person's sign-in: its console session and the provider session it came from are
 * `seconds` older (what a stale step-up looks like), without the test waiting for it.
 */
export async function ageSignIn(server: TestServer, person: { id: string }, seconds: number): Promise<void> {
  const knex = server.server.services.database.knex;
  await knex('console_sessions').where({ user_id: person.id }).update({ auth_time: knex.raw(`auth_time - make_interval(secs => ?)`, [seconds]) });
  await knex('oidc_payloads').where({ kind: 'Session', account_id: person.id })
    .update({ payload: knex.raw(`jsonb_set(payload, '{loginTs}', to_jsonb((payload->>'loginTs')::bigint - ?))`, [seconds]) });
}

export interface AuditRow {
  seq: number; actor_type: string; actor_id: string | null; actor_acr: string | null; ip: string | null; user_agent: string | null;
  request_id: string | null; action: string; target_type: string | null; target_id: string | null; result: string; reason: string | null;
  before: unknown; after: unknown;
}

/** The audit log's rows after `seq`, in order. */
export async function consoleAuditRows(server: TestServer, seq = 0): Promise<AuditRow[]> {
  const rows = await server.server.services.database.knex('audit_log').where('seq', '>', seq).orderBy('seq');
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** The audit log's last seq (to read only what a test step adds). */
export async function auditHead(server: TestServer): Promise<number> {
  return (await server.server.services.store.audit.chain()).headSeq;
}
