/**
 * The console's keys section, driven in Chromium (and over HTTP where a test posts what a page would):
 * rotating a key (the JWKS gains the new kid, new ID tokens carry it, a token signed before still
 * verifies); retiring one asks for a fresh step-up that names the action, and a confirmation that names
 * the kid; a key the provider still needs is refused with the reason; a stale step-up rotates and retires
 * nothing and leaves denied rows; an auditor sees the keys and changes nothing; the help desk sees none;
 * on a phone no page scrolls sideways and axe finds nothing serious.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page as BrowserPage } from 'playwright-core';
import { ensureSigningKeys } from '../../src/oidc/keys.ts';
import { CookieClient, csrfOf, findForm } from '../helpers/browser.ts';
import { seriousViolations } from '../helpers/axe.ts';
import { chromiumSuite } from '../helpers/chromium.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { sleep } from '../helpers/oauth.ts';
import { ageSignIn, auditHead, consoleAuditRows, consoleUser, signInConsole, signInConsolePage, totpNow, type ConsolePerson } from './helpers.ts';

describe('the console\'s keys section', () => {
  // RS256 and ES256 are configured; an EdDSA key left from an earlier configuration is the one to give up.
  const suite = chromiumSuite('console-keys', () => ({ keys: { algorithms: ['RS256', 'ES256'], refreshSeconds: 1 } }));
  const server = () => suite.server;
  const services = () => suite.server.server.services;
  let admin: ConsolePerson;
  let adminPage: BrowserPage;

  const activeKeys = async () => (await services().store.signingKeys.list()).filter((k) => k.state === 'active').map((k) => k.kid).sort();
  const activeKid = async (alg: string) => (await services().store.signingKeys.list()).find((k) => k.alg === alg && k.state === 'active')!.kid;

  /** A key of an algorithm no longer configured, still active: what retire is for. */
  async function leftoverEdDsaKey(): Promise<string> {
    await ensureSigningKeys(services().store, { ...server().config, keys: { ...server().config.keys, algorithms: ['EdDSA'] } });
    await server().server.app.providers.refresh();
    return activeKid('EdDSA');
  }

  /** Waits until the JWKS satisfies `check` (the server looks for key changes every second here). */
  async function jwksUntil(check: (kids: string[]) => boolean, what: string) {
    const end = Date.now() + 5000;
    for (;;) {
      const keys = await fetchJwks(server().url);
      if (check(keys.map((k) => k.kid!))) return keys;
      if (Date.now() > end) assert.fail(`not within 5 s: ${what}`);
      await sleep(100);
    }
  }

  const idToken = async (user: { email: string; password: string }) => (await suite.rp.signIn(new CookieClient(server().url), user)).tokens.id_token!;

  it('rotates a key: the JWKS gains the new kid, which signs after two key refreshes; new ID tokens carry it, a token signed before still verifies', async () => {
    admin = await consoleUser(server(), ['admin'], 'keys-admin');
    const user = await suite.newUser();
    const signedBefore = await idToken(user);
    const oldKid = decodeJwt(signedBefore).header.kid!;
    assert.equal(oldKid, await activeKid('RS256'));

    adminPage = await suite.openPage();
    await signInConsolePage(adminPage, server(), admin, '/admin/keys');
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${oldKid}"]`).getAttribute('data-state'), 'active');
    const seq = await auditHead(server());
    await adminPage.locator('#rotate-keys').click();
    await adminPage.getByLabel('Algorithm').selectOption('RS256');
    await adminPage.locator('#confirm-rotate').click();
    const notice = (await adminPage.locator('#notice').textContent())!;
    const newKid = /New keys: (\S+)\./.exec(notice)?.[1];
    assert.ok(newKid && newKid !== oldKid, notice);
    assert.match(notice, /sign after 2 seconds/);
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${newKid}"]`).getAttribute('data-state'), 'next');
    assert.match((await adminPage.locator(`#keys tr[data-kid="${newKid}"]`).textContent())!, /Signs from/);
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${oldKid}"]`).getAttribute('data-state'), 'active', 'the old key signs until every instance publishes the new one');

    // Two refreshes (keys.refreshSeconds: 1 here) later the running server promotes it.
    const promotedBy = Date.now() + 5000;
    while ((await activeKid('RS256')) !== newKid) {
      assert.ok(Date.now() < promotedBy, 'the new key signs within two refreshes and the one that promotes it');
      await sleep(100);
    }
    await adminPage.reload();
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${newKid}"]`).getAttribute('data-state'), 'active');
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${oldKid}"]`).getAttribute('data-state'), 'retired');
    assert.match((await adminPage.locator(`#keys tr[data-kid="${oldKid}"]`).textContent())!, /Published until/);

    const jwks = await jwksUntil((kids) => kids.includes(newKid), 'the new kid in the JWKS');
    assert.ok(jwks.some((k) => k.kid === oldKid), 'the retired key stays published');
    const signedAfter = await idToken(user);
    assert.equal(verifyJwt(signedAfter, jwks).header.kid, newKid, 'a new ID token is signed with the new key');
    assert.equal(verifyJwt(signedBefore, jwks).payload.sub, user.id, 'the token signed before still verifies');

    const rows = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'keys.rotate');
    assert.deepEqual(rows.map((r) => [r.result, r.actor_type, r.actor_id, (r.after as { rotated: string[] }).rotated]), [['ok', 'user', admin.id, [newKid]]]);
    assert.deepEqual(suite.violations, []);
  });

  it('retiring asks for a fresh step-up naming the action, then a confirmation naming the kid; a key still needed is refused with the reason', async () => {
    const edKid = await leftoverEdDsaKey();
    await ageSignIn(server(), admin, 360);
    await adminPage.goto(`${server().url}/admin/keys`);
    await adminPage.locator(`#keys tr[data-kid="${edKid}"] a`).click();
    // The provider's page asks to confirm it's them, and names what for.
    await adminPage.getByText('The admin console asks you to confirm it\'s you to: retire a signing key').waitFor();
    if (await adminPage.getByLabel('Email').isEditable()) await adminPage.getByLabel('Email').fill(admin.email);
    await adminPage.getByLabel('Password', { exact: true }).fill(admin.password);
    await adminPage.getByRole('button', { name: 'Sign in' }).click();
    await adminPage.locator('input[name="code"]').fill(await totpNow(server(), admin));
    await adminPage.locator('form[action$="/verify"] button[type="submit"]').first().click();
    await adminPage.waitForURL((u) => u.pathname === `/admin/keys/${edKid}/retire`);
    assert.equal(await adminPage.getByRole('heading', { level: 1 }).textContent(), `Retire key ${edKid}?`);
    assert.equal(await adminPage.locator('#retire-kid').textContent(), edKid);
    assert.equal(await adminPage.locator('#confirm-retire').textContent(), `Retire ${edKid}`);

    const seq = await auditHead(server());
    await adminPage.locator('#confirm-retire').click();
    assert.match((await adminPage.locator('#notice').textContent())!, new RegExp(`Retired ${edKid}\\.`));
    assert.equal(await adminPage.locator(`#keys tr[data-kid="${edKid}"]`).getAttribute('data-state'), 'retired');
    assert.ok((await fetchJwks(server().url)).some((k) => k.kid === edKid), 'a retired key stays in the JWKS');
    const [row] = (await consoleAuditRows(server(), seq)).filter((r) => r.action === 'keys.retire');
    assert.deepEqual([row!.result, row!.actor_id, row!.target_id], ['ok', admin.id, edKid]);

    // The active RS256 key is still needed: the operation's reason, and the way instead, on the page.
    const rsKid = await activeKid('RS256');
    await adminPage.goto(`${server().url}/admin/keys/${rsKid}/retire`);
    const [response] = await Promise.all([
      adminPage.waitForResponse((r) => r.url().endsWith(`/admin/keys/${rsKid}/retire`) && r.request().method() === 'POST'),
      adminPage.locator('#confirm-retire').click(),
    ]);
    assert.equal(response.status(), 409);
    assert.match((await adminPage.locator('#form-error').textContent())!, /still needed \(RS256 is in keys\.algorithms.*rotate it instead/);
    assert.equal(await activeKid('RS256'), rsKid);
    assert.deepEqual(suite.violations, []);
  });

  it('a stale step-up rotates and retires nothing and leaves denied rows', async () => {
    const edKid = await leftoverEdDsaKey();
    const browser = await signInConsole(server(), admin);
    const rotateForm = findForm((await browser.follow('/admin/keys/rotate')).body, '/admin/keys/rotate');
    const retireForm = findForm((await browser.follow(`/admin/keys/${edKid}/retire`)).body, `/admin/keys/${edKid}/retire`);
    const before = await activeKeys();
    await ageSignIn(server(), admin, 360);
    const seq = await auditHead(server());

    for (const [form, action] of [[rotateForm, 'keys-rotate'], [retireForm, 'keys-retire']] as const) {
      const res = await browser.request(form.action, { form: { ...form.hidden, alg: '' } });
      assert.equal(res.status, 303);
      const auth = new URL(res.headers.get('location')!);
      assert.equal(auth.pathname, '/auth');
      assert.equal(auth.searchParams.get('latchkey_action'), action);
    }
    assert.deepEqual(await activeKeys(), before, 'no key rotated, none retired');
    const rows = (await consoleAuditRows(server(), seq)).filter((r) => r.action.startsWith('keys.') && r.action !== 'keys.list');
    assert.deepEqual(rows.map((r) => [r.action, r.result, r.actor_id, r.target_id]), [['keys.rotate', 'denied', admin.id, null], ['keys.retire', 'denied', admin.id, edKid]]);
    for (const r of rows) assert.match(r.reason!, /^step_up_required: /);
  });

  it('an auditor sees the keys without a button, and its rotation or retirement is refused and logged; the help desk sees no keys', async () => {
    const auditor = await consoleUser(server(), ['auditor'], 'keys-auditor');
    const reader = await signInConsole(server(), auditor, '/admin/keys');
    const page = await reader.follow('/admin/keys');
    assert.equal(page.status, 200);
    for (const kid of await activeKeys()) assert.match(page.body, new RegExp(`data-kid="${kid}"`));
    assert.doesNotMatch(page.body, /id="rotate-keys"|\/retire"/);
    const kid = await activeKid('RS256');
    for (const path of ['/admin/keys/rotate', `/admin/keys/${kid}/retire`]) {
      const refused = await reader.follow(path);
      assert.equal(refused.status, 403, path);
      assert.match(refused.body, /Your role may look at the keys but not change them/);
    }

    const before = await activeKeys();
    const seq = await auditHead(server());
    for (const path of ['/admin/keys/rotate', `/admin/keys/${kid}/retire`]) {
      const res = await reader.follow(path, { form: { csrf: csrfOf(page) } });
      assert.equal(res.status, 403, path);
      assert.match(res.body, /id="refused"/);
    }
    assert.deepEqual(await activeKeys(), before);
    const denied = (await consoleAuditRows(server(), seq)).filter((r) => r.result === 'denied');
    assert.deepEqual(denied.map((r) => [r.action, r.actor_id]), [['keys.rotate', auditor.id], ['keys.retire', auditor.id]]);

    const helpdesk = await consoleUser(server(), ['helpdesk'], 'keys-helpdesk');
    const desk = await signInConsole(server(), helpdesk);
    const refused = await desk.follow('/admin/keys');
    assert.equal(refused.status, 403);
    assert.match(refused.body, /Your role does not include the signing keys/);
    assert.doesNotMatch(refused.body, new RegExp(kid));
    assert.ok((await consoleAuditRows(server(), seq)).some((r) => r.action === 'keys.list' && r.result === 'denied' && r.actor_id === helpdesk.id));
  });
  it('on a phone (375 px wide) no page of the section scrolls sideways, and axe finds nothing serious', async () => {
    const phone = await suite.openPage({ viewport: { width: 375, height: 800 } });
    await signInConsolePage(phone, server(), admin, '/admin/keys');
    for (const path of ['/admin/keys', '/admin/keys/rotate', `/admin/keys/${await activeKid('RS256')}/retire`]) {
      await phone.goto(`${server().url}${path}`);
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 375, `${path} is ${width} px wide`);
      const violations = await seriousViolations(phone);
      assert.deepEqual(violations, [], `axe at ${path}: ${violations.join('\n')}`);
    }
    assert.deepEqual(suite.violations, []);
  });
});
