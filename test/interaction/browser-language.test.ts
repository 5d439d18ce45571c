import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backAtApp, chromiumSuite } from '../helpers/chromium.ts';
import { seriousViolations } from '../helpers/axe.ts';

describe('the language picker, in Chromium', () => {
  const suite = chromiumSuite('picker');

  it('switches an English sign-in page to German with a plain form (no script, CSP intact), accessibly, and the sign-in finishes in German', async () => {
    const user = await suite.newUser();
    const { page, callbacks } = await suite.openBrowser();
    await page.goto((await suite.rp.authorization()).url);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'en', 'the browser asks for en-US');
    const english = await seriousViolations(page);
    assert.deepEqual(english, [], `axe: ${english.join('\n')}`);
    const signInPath = new URL(page.url()).pathname;

    await page.getByLabel('Language').selectOption({ label: 'Deutsch' });
    await page.getByRole('button', { name: 'Change', exact: true }).click();
    await page.getByRole('heading', { name: 'Anmelden' }).waitFor();
    assert.equal(new URL(page.url()).pathname, signInPath, 'back on the same sign-in page');
    assert.equal(await page.locator('html').getAttribute('lang'), 'de');
    assert.equal(await page.getByLabel('Sprache').inputValue(), 'de', 'the picker shows the choice');
    const german = await seriousViolations(page);
    assert.deepEqual(german, [], `axe: ${german.join('\n')}`);

    await page.getByLabel('E-Mail').fill(user.email);
    await page.getByLabel('Passwort', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Anmelden', exact: true }).click();
    await page.getByRole('heading', { name: 'Zugriff für Notes erlauben?' }).waitFor();
    assert.equal(await page.locator('html').getAttribute('lang'), 'de', 'the next page keeps the choice');
    await page.getByRole('button', { name: 'Erlauben', exact: true }).click();
    await backAtApp(page, callbacks);
    const stored = await suite.server.server.services.store.users.findById(user.id);
    assert.equal(stored?.language, 'de', 'their mails will be German');
    assert.deepEqual(suite.violations, [], 'no CSP violations or page errors');
  });
});
