/**
 * The console's audit section, driven in Chromium (and over HTTP for the roles): the console's own actions
 * with the administrator as actor and their redacted before/after; filters, and keyset pages that stay
 * the same while rows are added; the export as CSV and NDJSON downloads with the filters applied, streamed;
 * "Verify the chain" reporting an intact chain, and the first broken link after a row is edited in the
 * database; an auditor reads, exports and verifies; the help desk gets none of it, each attempt a row; on a
 * phone nothing scrolls sideways and axe finds nothing serious.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { Page as BrowserPage } from 'playwright-core';
import { csrfOf } from '../helpers/browser.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { chromiumSuite } from '../helpers/chromium.ts';
import { auditHead, consoleAuditRows, consoleUser, signInConsole, signInConsolePage, type ConsolePerson } from './helpers.ts';

describe('the console\'s audit section', () => {
  const suite = chromiumSuite('console-audit');
  const server = () => suite.server;
  const services = () => suite.server.server.services;
  const knex = () => services().database.knex;
  let admin: ConsolePerson;
  let page: BrowserPage;

  /** A row from elsewhere (another administrator, the API, the CLI) arriving while the page is read. */
  const appendRow = (action: string) => services().store.audit.append({
    actorType: 'cli', actorId: null, actorAcr: null, ip: null, userAgent: null, requestId: null,
    action, targetType: 'audit_test', targetId: null, result: 'ok', reason: null, before: null, after: null,
  });
  const seqsOnPage = async () => (await page.locator('#audit-rows > li').evaluateAll((items) => items.map((li) => Number(li.getAttribute('data-seq')))));

  it('shows the console\'s actions with the administrator as actor, the level of their sign-in, and a redacted before and after', async () => {
    admin = await consoleUser(server(), ['admin'], 'audit-admin');
    page = await suite.openPage();
    await signInConsolePage(page, server(), admin, '/admin/clients/new');
    await page.getByLabel('Name', { exact: true }).fill('Audited app');
    await page.getByLabel('Redirect URIs', { exact: true }).fill('https://audited.example/cb');
    await page.getByRole('button', { name: 'Register the client' }).click();
    const clientId = (await page.locator('#client-id code').textContent())!;
    const secret = (await page.locator('#client-secret code').textContent())!;

    await page.goto(`${server().url}/admin/audit`);
    const row = page.locator('#audit-rows > li').filter({ hasText: 'clients.add' }).first();
    assert.match((await row.locator('.actor').textContent())!, new RegExp(`By user:${admin.id} \\(you\\) · urn:latchkey:acr:mfa`));
    assert.equal(await row.locator('.target code').textContent(), `client:${clientId}`);
    assert.match((await row.textContent())!, /127\.0\.0\.1/);
    await row.locator('summary').click();
    const after = JSON.parse((await row.locator('pre.after').textContent())!) as { clientId: string; clientSecret: string };
    assert.equal(after.clientId, clientId);
    assert.equal(after.clientSecret, '[redacted]');
    assert.ok(!(await page.content()).includes(secret), 'the secret is nowhere on the page');
    // The sign-in too, and the page's own reading is a row of its own, read on the next visit.
    assert.ok((await page.locator('#audit-rows > li').filter({ hasText: 'console.sign_in' }).count()) >= 1);
    await page.goto(`${server().url}/admin/audit?action=audit.list&actor=user:${admin.id}`);
    assert.ok((await seqsOnPage()).length >= 1);
    assert.deepEqual(suite.violations, []);
  });

  it('filters, and pages by keyset: an older page stays the same while rows are added', async () => {
    for (let i = 0; i < 60; i++) await appendRow('test.paging');
    const all = (await knex()('audit_log').where({ action: 'test.paging' }).orderBy('seq', 'desc').select('seq')).map((r) => Number(r.seq));

    await page.goto(`${server().url}/admin/audit`);
    await page.getByText('Filters', { exact: true }).click();
    await page.getByLabel('Actions').fill('test.paging');
    await page.getByRole('button', { name: 'Show these rows' }).click();
    assert.deepEqual(await seqsOnPage(), all.slice(0, 50), 'the newest 50 first');

    for (let i = 0; i < 5; i++) await appendRow('test.paging');
    await page.locator('#older').click();
    assert.deepEqual(await seqsOnPage(), all.slice(50), 'the next page is the 10 older ones, none again and none skipped');
    assert.equal(await page.locator('#older').count(), 0, 'the last page');
    await page.locator('#newest').click();
    const fresh = await seqsOnPage();
    assert.equal(fresh.length, 50);
    assert.ok(fresh.slice(0, 5).every((s) => s > all[0]!), 'the rows added meanwhile come first on a new list');

    // A filter the operation refuses: its message next to its field.
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.url().includes('since=yesterday')),
      page.goto(`${server().url}/admin/audit?since=yesterday`),
    ]);
    assert.equal(response.status(), 400);
    assert.match((await page.locator('#since-error').textContent())!, /"yesterday" is not a date/);
  });

  it('downloads the rows as CSV and NDJSON, streamed, with the filters applied', async () => {
    await page.goto(`${server().url}/admin/audit?action=clients.add%2Cconsole.sign_in&result=ok`);
    const expected = await knex()('audit_log').whereIn('action', ['clients.add', 'console.sign_in']).andWhere({ result: 'ok' }).orderBy('seq');
    assert.ok(expected.length >= 2);
    const seq = await auditHead(server());

    const [csv] = await Promise.all([page.waitForEvent('download'), page.locator('#export-csv').click()]);
    assert.match(csv.suggestedFilename(), /^latchkey-audit-\d{8}T\d{6}Z\.csv$/);
    const lines = (await readFile((await csv.path())!, 'utf8')).split('\r\n').filter(Boolean);
    assert.match(lines[0]!, /^seq,time,actor_type,actor_id,actor_acr,ip,user_agent,request_id,action,/);
    assert.deepEqual(lines.slice(1).map((l) => Number(l.split(',')[0])), expected.map((r) => Number(r.seq)));

    const [ndjson] = await Promise.all([page.waitForEvent('download'), page.locator('#export-ndjson').click()]);
    assert.match(ndjson.suggestedFilename(), /\.ndjson$/);
    const rows = (await readFile((await ndjson.path())!, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; action: string; result: string; hash: string });
    assert.deepEqual(rows.map((r) => r.seq), expected.map((r) => Number(r.seq)));
    assert.ok(rows.every((r) => ['clients.add', 'console.sign_in'].includes(r.action) && r.result === 'ok' && /^[0-9a-f]{64}$/.test(r.hash)));

    const exports = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'audit.export');
    assert.deepEqual(exports.map((r) => [r.result, r.actor_id, (r.after as { format: string; rows: number }).format, (r.after as { rows: number }).rows]), [
      ['ok', admin.id, 'csv', expected.length], ['ok', admin.id, 'ndjson', expected.length],
    ]);

    // Streamed: no length known up front; a format the operation does not know is an error page, not a file.
    const browser = await signInConsole(server(), admin, '/admin/audit');
    const streamed = await fetch(`${server().url}/admin/audit/export?format=ndjson`, { headers: { cookie: browser.cookieHeader() } });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers.get('content-length'), null);
    assert.equal(streamed.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
    assert.match(streamed.headers.get('content-disposition')!, /^attachment; filename="latchkey-audit-/);
    assert.equal(streamed.headers.get('cache-control'), 'no-store');
    await streamed.text();
    const unknown = await browser.follow('/admin/audit/export?format=xml');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /format must be one of csv, ndjson/);
  });

  it('an auditor reads, exports and verifies; the help desk gets a 403 page for each, and each attempt is a denied row', async () => {
    const auditor = await consoleUser(server(), ['auditor'], 'audit-auditor');
    const reader = await signInConsole(server(), auditor, '/admin/audit');
    const list = await reader.follow('/admin/audit');
    assert.equal(list.status, 200);
    assert.match(list.body, /id="audit-rows"/);
    assert.equal((await reader.request('/admin/audit/export?format=csv')).status, 200);
    const verified = await reader.follow('/admin/audit/verify', { form: { csrf: csrfOf(list) } });
    assert.equal(verified.status, 200);
    assert.match(verified.body, /data-ok="true"/);

    const helpdesk = await consoleUser(server(), ['helpdesk'], 'audit-helpdesk');
    const desk = await signInConsole(server(), helpdesk);
    const home = await desk.follow('/admin');
    assert.doesNotMatch(home.body, /href="\/admin\/audit"/, 'no audit log in the help desk\'s navigation');
    const seq = await auditHead(server());
    const refusals = [await desk.follow('/admin/audit'), await desk.follow('/admin/audit/export?format=csv'), await desk.follow('/admin/audit/verify', { form: { csrf: csrfOf(home) } })];
    for (const res of refusals) {
      assert.equal(res.status, 403);
      assert.match(res.body, /Your role does not include the audit log/);
      assert.doesNotMatch(res.body, /id="audit-rows"/);
    }
    assert.equal(refusals[1]!.headers.get('content-disposition'), null, 'no download');
    const denied = (await consoleAuditRows(server(), seq)).filter((r) => r.actor_id === helpdesk.id);
    assert.deepEqual(denied.map((r) => [r.action, r.result]), [['audit.list', 'denied'], ['audit.export', 'denied'], ['audit.verify', 'denied']]);
  });

  it('on a phone (375 px wide) the log, its filters, a row\'s before and after, and the verification do not scroll sideways, and axe finds nothing serious', async () => {
    const phone = await suite.openPage({ viewport: { width: 375, height: 800 } });
    await signInConsolePage(phone, server(), admin, '/admin/audit');
    await phone.goto(`${server().url}/admin/audit?action=clients.add&since=2020-01-01`);
    await phone.locator('#audit-rows > li details summary').first().click();
    const check = async (what: string) => {
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `${what} is ${width} px wide`);
      const violations = await seriousViolations(phone);
      assert.deepEqual(violations, [], `axe at ${what}: ${violations.join('\n')}`);
    };
    await check('the audit log');
    await phone.goto(`${server().url}/admin/audit?since=yesterday`);
    await check('a refused filter');
    await phone.goto(`${server().url}/admin/audit`);
    await phone.locator('#verify-chain').click();
    await phone.locator('#verify-result').waitFor();
    await phone.waitForLoadState('load');
    await check('the verification');
    assert.deepEqual(suite.violations, []);
  });

  it('"Verify the chain" reports an intact chain, and after a row is edited in the database, the first broken link', async () => {
    await page.goto(`${server().url}/admin/audit`);
    await page.locator('#verify-chain').click();
    assert.equal(await page.locator('#verify-result').getAttribute('data-ok'), 'true');
    assert.match((await page.locator('#verify-result').textContent())!, /The chain is intact: \d+ rows checked, from row 1 to row \d+\./);

    // Someone with the database's password edits a row around the append-only trigger.
    const target = await knex()('audit_log').where({ action: 'clients.add' }).orderBy('seq').first();
    const edited = Number(target.seq);
    await knex().transaction(async (trx) => {
      await trx.raw('alter table audit_log disable trigger audit_log_append_only');
      await trx('audit_log').where({ seq: edited }).update({ reason: 'nothing happened here' });
      await trx.raw('alter table audit_log enable trigger audit_log_append_only');
    });
    await page.goto(`${server().url}/admin/audit`);
    await page.locator('#verify-chain').click();
    assert.equal(await page.locator('#verify-result').getAttribute('data-ok'), 'false');
    assert.equal(await page.locator('#verify-result').getAttribute('data-seq'), String(edited));
    assert.match((await page.locator('#verify-result').textContent())!, new RegExp(`broken at row ${edited}\\.`));
    assert.match((await page.locator('main').textContent())!, new RegExp(`row ${edited} was altered: its hash does not match its content`));
    const [row] = await knex()('audit_log').where({ action: 'audit.verify', actor_id: admin.id }).orderBy('seq', 'desc').limit(1);
    assert.deepEqual([row.result, (row.after as { ok: boolean; seq: number }).ok, (row.after as { seq: number }).seq], ['ok', false, edited]);
  });
});
