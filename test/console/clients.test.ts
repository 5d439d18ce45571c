/**
 * The console's clients section, driven in Chromium (and over HTTP where a test posts what a page would):
 * a client registered in the console signs a user in through openid-client (code + PKCE); a refused
 * registration shows each message next to its field; editing, disabling, enabling and deleting; rotating
 * the secret (the old one works during the grace period and stops with a rotation without grace); a stale
 * step-up rotates nothing and is a denied row; an auditor sees everything and changes nothing; the help
 * desk sees no clients at all; on a phone no page scrolls sideways and axe finds nothing serious.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page as BrowserPage } from 'playwright-core';
import type { RegisteredClient } from '../../src/oidc/clients.ts';
import { CookieClient, csrfOf, findForm } from '../helpers/browser.ts';
import { APP, chromiumSuite } from '../helpers/chromium.ts';
import { postAsClient } from '../helpers/oauth.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { ageSignIn, auditHead, consoleAuditRows, consoleUser, signInConsole, signInConsolePage, stepUpConsole, type ConsolePerson } from './helpers.ts';

/** A client-credentials token request with this secret: 'token', or the status and error. */
async function tokenWith(issuer: string, clientId: string, secret: string): Promise<string> {
  const res = await postAsClient(`${issuer}/token`, { clientId, clientSecret: secret }, { grant_type: 'client_credentials' });
  const body = (await res.json()) as { access_token?: string; error?: string };
  return res.ok && body.access_token ? 'token' : `${res.status} ${body.error}`;
}

describe('the console\'s clients section', () => {
  const suite = chromiumSuite('console-clients');
  const server = () => suite.server;
  const knex = () => suite.server.server.services.database.knex;
  let admin: ConsolePerson;
  let adminPage: BrowserPage;

  /** Registers a client on the console's form; the client id and secret the next page shows once. */
  async function register(page: BrowserPage, fill: (page: BrowserPage) => Promise<void>): Promise<{ clientId: string; secret: string; cacheControl: string | undefined }> {
    await page.goto(`${server().url}/admin/clients`);
    await page.locator('#new-client').click();
    await fill(page);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/clients/new') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Register the client' }).click(),
    ]);
    await page.getByRole('heading', { name: 'Client registered' }).waitFor();
    return {
      clientId: (await page.locator('#client-id code').textContent())!,
      secret: (await page.locator('#client-secret code').textContent())!,
      cacheControl: (await response.allHeaders())['cache-control'],
    };
  }

  it('an administrator registers a client; an app signs a user in with it through openid-client (code + PKCE)', async () => {
    admin = await consoleUser(server(), ['admin'], 'clients-admin');
    adminPage = await suite.openPage();
    await signInConsolePage(adminPage, server(), admin, '/admin/clients');
    const seq = await auditHead(server());

    const created = await register(adminPage, async (page) => {
      await page.getByLabel('Name', { exact: true }).fill('Console Notes');
      await page.getByLabel('Redirect URIs', { exact: true }).fill(`${APP}/console-cb`);
    });
    assert.equal(created.cacheControl, 'no-store', 'the page with the secret is never cached');
    assert.match(created.clientId, /^[A-Za-z0-9_-]{22}$/);
    assert.match(created.secret, /^[A-Za-z0-9_-]{43}$/);

    const user = await suite.newUser();
    const rp = await RelyingParty.create(server().url, {
      clientId: created.clientId, clientSecret: created.secret, metadata: { redirect_uris: [`${APP}/console-cb`], id_token_signed_response_alg: 'RS256' },
    } satisfies RegisteredClient);
    const { url } = await rp.authorization();
    const auth = new URL(url);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    const { claims, tokens } = await rp.signIn(new CookieClient(server().url), user);
    assert.equal(claims.sub, user.id);
    assert.equal(claims.aud, created.clientId);
    assert.ok(tokens.access_token);

    const rows = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'clients.add');
    assert.deepEqual(rows.map((r) => [r.result, r.actor_type, r.actor_id, r.actor_acr, r.target_id]), [['ok', 'user', admin.id, 'urn:latchkey:acr:mfa', created.clientId]]);
    assert.ok(!JSON.stringify(rows).includes(created.secret), 'the secret is not in the audit log');
    await adminPage.goto(`${server().url}/admin/clients`);
    assert.match((await adminPage.locator('#clients').textContent())!, /Console Notes/);
    assert.deepEqual(suite.violations, []);
  });

  it('a refused registration shows each message next to its field and registers nothing', async () => {
    const before = (await server().server.services.store.clients.list()).length;
    await adminPage.goto(`${server().url}/admin/clients/new`);
    await adminPage.getByLabel('Redirect URIs', { exact: true }).fill('http://example.com/cb\nhttps://app.example/cb#fragment');
    const [response] = await Promise.all([
      adminPage.waitForResponse((r) => r.url().endsWith('/admin/clients/new') && r.request().method() === 'POST'),
      adminPage.getByRole('button', { name: 'Register the client' }).click(),
    ]);
    assert.equal(response.status(), 400);
    assert.match((await adminPage.locator('#name-error').textContent())!, /name is required/);
    assert.match((await adminPage.locator('#redirectUris-error').textContent())!, /http:\/\/example\.com\/cb must use https/);
    assert.equal(await adminPage.locator('#name').getAttribute('aria-invalid'), 'true');
    // What was typed stays in the form.
    assert.match(await adminPage.locator('#redirectUris').inputValue(), /app\.example\/cb#fragment/);
    assert.equal((await server().server.services.store.clients.list()).length, before);

    // A rule about several fields at once is shown above the form.
    await adminPage.getByLabel('Name', { exact: true }).fill('No redirect');
    await adminPage.getByLabel('Redirect URIs', { exact: true }).fill('');
    await adminPage.getByRole('button', { name: 'Register the client' }).click();
    assert.match((await adminPage.locator('#form-error').textContent())!, /authorization_code needs at least one redirect URI/);
    assert.equal((await server().server.services.store.clients.list()).length, before);
  });

  it('edits a client, disables and enables it (its tokens stop and come back), and deletes it after a confirmation', async () => {
    const worker = await register(adminPage, async (page) => {
      await page.getByLabel('Name', { exact: true }).fill('Nightly job');
      await page.getByLabel(/Sign-in in a browser/).uncheck();
      await page.getByLabel(/Refresh tokens/).uncheck();
      await page.getByLabel(/Service to service/).check();
    });
    assert.equal(await tokenWith(server().url, worker.clientId, worker.secret), 'token');
    await adminPage.getByRole('link', { name: 'Done' }).click();
    const seq = await auditHead(server());

    await adminPage.getByLabel('Name', { exact: true }).fill('Nightly export');
    await adminPage.getByLabel('Minimum sign-in level').selectOption('urn:latchkey:acr:mfa');
    await adminPage.getByLabel('Logo URL').fill('https://cdn.example/logo.png');
    await adminPage.getByRole('button', { name: 'Save changes' }).click();
    assert.match((await adminPage.locator('#notice').textContent())!, /Saved the changes to Nightly export/);
    const stored = await server().server.services.store.clients.find(worker.clientId);
    assert.equal(stored!.name, 'Nightly export');
    assert.equal(stored!.metadata.minimum_acr, 'urn:latchkey:acr:mfa');
    assert.equal(stored!.metadata.logo_uri, 'https://cdn.example/logo.png');
    const [update] = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'clients.update');
    assert.equal(update!.actor_id, admin.id);
    assert.equal((update!.before as { name: string }).name, 'Nightly job');
    assert.equal((update!.after as { name: string }).name, 'Nightly export');

    // Taking the logo away again: an emptied optional setting is removed.
    await adminPage.getByLabel('Logo URL').fill('');
    await adminPage.getByRole('button', { name: 'Save changes' }).click();
    assert.equal((await server().server.services.store.clients.find(worker.clientId))!.metadata.logo_uri, undefined);
    // Saved as it is: nothing to change, said so, and no row.
    await adminPage.getByRole('button', { name: 'Save changes' }).click();
    assert.match((await adminPage.locator('#notice').textContent())!, /Nothing to save/);

    await adminPage.locator('#switch-client').click();
    assert.match((await adminPage.locator('#notice').textContent())!, /Nightly export is disabled/);
    await adminPage.locator('#client-disabled').waitFor();
    assert.equal(await tokenWith(server().url, worker.clientId, worker.secret), '401 invalid_client');
    await adminPage.locator('#switch-client').click();
    assert.match((await adminPage.locator('#notice').textContent())!, /enabled again/);
    assert.equal(await tokenWith(server().url, worker.clientId, worker.secret), 'token');

    await adminPage.locator('#delete-client').click();
    assert.equal(await adminPage.getByRole('heading', { level: 1 }).textContent(), 'Delete Nightly export?');
    await adminPage.locator('#confirm-delete').click();
    assert.match((await adminPage.locator('#notice').textContent())!, /Deleted Nightly export/);
    assert.equal(await server().server.services.store.clients.find(worker.clientId), undefined);
    assert.equal(await tokenWith(server().url, worker.clientId, worker.secret), '401 invalid_client');
    const actions = (await consoleAuditRows(server(), seq)).filter((r) => r.action.startsWith('clients.') && !['clients.list', 'clients.show'].includes(r.action));
    assert.deepEqual(actions.map((r) => [r.action, r.result, r.actor_id]), [
      ['clients.update', 'ok', admin.id], ['clients.update', 'ok', admin.id], ['clients.disable', 'ok', admin.id],
      ['clients.enable', 'ok', admin.id], ['clients.remove', 'ok', admin.id],
    ]);
  });

  it('rotates the secret: the old one works during the grace period, and not after a rotation without grace', async () => {
    const job = await register(adminPage, async (page) => {
      await page.getByLabel('Name', { exact: true }).fill('Billing job');
      await page.getByLabel(/Sign-in in a browser/).uncheck();
      await page.getByLabel(/Refresh tokens/).uncheck();
      await page.getByLabel(/Service to service/).check();
    });
    const first = job.secret;

    /** Rotates on the console's form with this grace; the new secret, shown once. */
    async function rotate(grace: string): Promise<{ secret: string; grace: string }> {
      await adminPage.goto(`${server().url}/admin/clients/${job.clientId}`);
      await adminPage.locator('#rotate-secret').click();
      await adminPage.getByLabel('Grace period for the current secret').selectOption({ label: grace });
      const [response] = await Promise.all([
        adminPage.waitForResponse((r) => r.url().endsWith('/secret') && r.request().method() === 'POST'),
        adminPage.locator('#confirm-rotate').click(),
      ]);
      assert.equal((await response.allHeaders())['cache-control'], 'no-store');
      await adminPage.getByRole('heading', { name: 'New client secret' }).waitFor();
      return { secret: (await adminPage.locator('#client-secret code').textContent())!, grace: (await adminPage.locator('#grace').textContent())! };
    }

    const second = await rotate('24 hours');
    assert.notEqual(second.secret, first);
    assert.match(second.grace, /keeps working until/);
    const until = (await server().server.services.store.clients.find(job.clientId))!.previousSecret!.expiresAt.getTime();
    assert.ok(Math.abs(until - (Date.now() + 86400_000)) < 60_000, 'the grace ends in 24 hours');
    assert.equal(await tokenWith(server().url, job.clientId, first), 'token', 'the old secret works during the grace period');
    assert.equal(await tokenWith(server().url, job.clientId, second.secret), 'token');

    const third = await rotate('None: it stops now');
    assert.match(third.grace, /stopped working at once/);
    assert.equal(await tokenWith(server().url, job.clientId, second.secret), '401 invalid_client', 'without grace the secret before stops at once');
    assert.equal(await tokenWith(server().url, job.clientId, first), '401 invalid_client');
    assert.equal(await tokenWith(server().url, job.clientId, third.secret), 'token');

    const rows = await knex()('audit_log').where({ action: 'clients.rotate_secret', target_id: job.clientId }).orderBy('seq');
    assert.deepEqual(rows.map((r) => [r.result, r.actor_id, (r.after as { graceSeconds: number }).graceSeconds]), [['ok', admin.id, 86400], ['ok', admin.id, 0]]);
    const log = JSON.stringify(rows) + server().logText();
    for (const s of [first, second.secret, third.secret]) assert.ok(!log.includes(s), 'no secret in the audit log or the server log');
  });

  it('a stale step-up rotates nothing, leaves a denied row, and asks to confirm (naming the action) before going on', async () => {
    const job = await server().addClient({ name: 'Stale job', grantTypes: ['client_credentials'] });
    const browser = await signInConsole(server(), admin);
    const form = await browser.follow(`/admin/clients/${job.clientId}/secret`);
    assert.equal(form.status, 200, 'a fresh sign-in shows the form at once');
    // Six minutes later (console.stepUpSeconds is 300): the sign-in is no longer fresh.
    await ageSignIn(server(), admin, 360);
    const seq = await auditHead(server());

    const { action, hidden } = findForm(form.body, `/admin/clients/${job.clientId}/secret`);
    const res = await browser.request(action, { form: { ...hidden, grace: '0' } });
    assert.equal(res.status, 303);
    const auth = new URL(res.headers.get('location')!);
    assert.equal(auth.pathname, '/auth');
    assert.equal(auth.searchParams.get('latchkey_action'), 'client-secret-rotate');
    assert.equal(auth.searchParams.get('max_age'), '300');
    assert.equal(await tokenWith(server().url, job.clientId, job.clientSecret!), 'token', 'the secret did not change');
    assert.equal((await server().server.services.store.clients.find(job.clientId))!.previousSecret, undefined);
    const rows = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'clients.rotate_secret');
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]!.result, rows[0]!.actor_id, rows[0]!.target_id], ['denied', admin.id, job.clientId]);
    assert.match(rows[0]!.reason!, /^step_up_required: /);

    // The step-up page names the action; after it, the form again, and the rotation goes through.
    const stepUp = await browser.follow(res.headers.get('location')!);
    assert.match(stepUp.body, /rotate a client secret/);
    const again = await stepUpConsole(browser, server(), admin, `/admin/clients/${job.clientId}/secret`);
    const retry = findForm(again.body, `/admin/clients/${job.clientId}/secret`);
    const rotated = await browser.follow(retry.action, { form: { ...retry.hidden, grace: '0' } });
    assert.equal(rotated.status, 200);
    assert.match(rotated.body, /New client secret/);
    assert.equal(await tokenWith(server().url, job.clientId, job.clientSecret!), '401 invalid_client');
  });

  it('an auditor sees the clients and no write button; a write is refused (403) and logged; the help desk sees no clients', async () => {
    const job = await server().addClient({ name: 'Audited job', grantTypes: ['client_credentials'] });
    const auditor = await consoleUser(server(), ['auditor'], 'clients-auditor');
    const reader = await signInConsole(server(), auditor, '/admin/clients');
    const list = await reader.follow('/admin/clients');
    assert.equal(list.status, 200);
    assert.match(list.body, /Audited job/);
    assert.doesNotMatch(list.body, /id="new-client"/);
    const detail = await reader.follow(`/admin/clients/${job.clientId}`);
    assert.equal(detail.status, 200);
    assert.match(detail.body, /<fieldset disabled>/);
    assert.doesNotMatch(detail.body, /Save changes|id="switch-client"|id="rotate-secret"|id="delete-client"/);
    for (const path of ['/admin/clients/new', `/admin/clients/${job.clientId}/delete`, `/admin/clients/${job.clientId}/secret`]) {
      const page = await reader.follow(path);
      assert.equal(page.status, 403, path);
      assert.match(page.body, /Your role may look at clients but not change them/);
    }

    // Forms posted as an administrator's page would: the operations refuse them, and each refusal is a row.
    const seq = await auditHead(server());
    const csrf = { csrf: csrfOf(list) };
    for (const [path, form] of [[`/admin/clients/${job.clientId}/disable`, {}], [`/admin/clients/${job.clientId}/secret`, { grace: '0' }], [`/admin/clients/${job.clientId}/delete`, {}], ['/admin/clients/new', { name: 'Sneaky', grant_client_credentials: 'on', authMethod: 'client_secret_basic', idTokenAlg: 'RS256' }]] as const) {
      const res = await reader.follow(path, { form: { ...csrf, ...form } });
      assert.equal(res.status, 403, path);
    }
    const stored = await server().server.services.store.clients.find(job.clientId);
    assert.equal(stored!.disabledAt, null);
    assert.equal(stored!.previousSecret, undefined);
    assert.ok(!(await server().server.services.store.clients.list()).some((c) => c.name === 'Sneaky'));
    const denied = (await consoleAuditRows(server(), seq)).filter((r) => r.result === 'denied');
    assert.deepEqual(denied.map((r) => [r.action, r.actor_id]), [
      ['clients.disable', auditor.id], ['clients.rotate_secret', auditor.id], ['clients.remove', auditor.id], ['clients.add', auditor.id],
    ]);

    const helpdesk = await consoleUser(server(), ['helpdesk'], 'clients-helpdesk');
    const desk = await signInConsole(server(), helpdesk);
    const refused = await desk.follow('/admin/clients');
    assert.equal(refused.status, 403);
    assert.match(refused.body, /id="refused"/);
    assert.match(refused.body, /Your role does not include clients/);
    assert.match(refused.body, /may not clients read/);
    assert.match(refused.body, /id="signed-in-as"/, 'in the console\'s frame');
    assert.doesNotMatch(refused.body, /Audited job/);
    const [row] = (await consoleAuditRows(server(), seq)).filter((r) => r.actor_id === helpdesk.id && r.action === 'clients.list');
    assert.equal(row!.result, 'denied');
  });
  it('on a phone (375 px wide) no page of the section scrolls sideways, and axe finds nothing serious', async () => {
    const phone = await suite.openPage({ viewport: { width: 375, height: 800 } });
    await signInConsolePage(phone, server(), admin, '/admin/clients');
    const job = await server().addClient({ name: 'A client with a rather long name for a small screen', redirectUris: ['https://a-long-host-name.example/an/even/longer/callback/path'] });
    const pages: [string, () => Promise<unknown>][] = [
      ['/admin/clients', async () => {}],
      [`/admin/clients/${job.clientId}`, async () => {}],
      ['/admin/clients/new', async () => {
        await phone.getByRole('button', { name: 'Register the client' }).click();
        await phone.locator('#name-error').waitFor();
      }],
      [`/admin/clients/${job.clientId}/secret`, async () => {}],
      [`/admin/clients/${job.clientId}/delete`, async () => {}],
      ['/admin/clients/new', async () => {
        await phone.getByLabel('Name', { exact: true }).fill('Phone app');
        await phone.getByLabel('Redirect URIs', { exact: true }).fill('https://phone.example/cb');
        await phone.getByRole('button', { name: 'Register the client' }).click();
        await phone.locator('#client-secret').waitFor();
      }],
    ];
    for (const [path, then] of pages) {
      await phone.goto(`${server().url}${path}`);
      await then();
      await phone.waitForLoadState('load');
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `${phone.url()} is ${width} px wide`);
      const violations = await seriousViolations(phone);
      assert.deepEqual(violations, [], `axe at ${phone.url()}: ${violations.join('\n')}`);
    }
    assert.deepEqual(suite.violations, []);
  });
});
