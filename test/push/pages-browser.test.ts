/**
 * The pages of mobile app prompts in Chromium, with their scripts: the sign-in page waiting on a prompt
 * continues by itself once the phone approved (push-wait.js), and the account page's pairing continues by
 * itself once the phone answered its test prompt (push-pair.js). The phone is a software device answering
 * from Node while the page polls. No CSP violation, no console error, no serious axe violation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { seriousViolations } from '../helpers/axe.ts';
import { backAtApp, chromiumSuite } from '../helpers/chromium.ts';
import { SoftwareDevice } from '../helpers/push-device.ts';
import { promptsOf, PUSH_TEST_CONFIG, userWithPhone } from '../helpers/push-setup.ts';
import { addQuestion } from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';

describe('mobile app prompts in Chromium', () => {
  const suite = chromiumSuite('push-pages-', () => PUSH_TEST_CONFIG);
  const consoleErrors: string[] = [];
  const watchConsole = (page: Page) => page.on('console', (m) => {
    // The browser's own guess at /favicon.ico is not the page's doing.
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) consoleErrors.push(`${m.text()} (${m.location().url})`);
  });

  it('the waiting page continues to the app by itself once the phone approves', async () => {
    const user = await userWithPhone(suite.server, 'wait-');
    const { page, callbacks } = await suite.openBrowser();
    watchConsole(page);
    await page.goto((await suite.rp.authorization({ acr_values: MFA })).url);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    const number = page.getByRole('img', { name: /The number to type on your phone: \d+/ });
    await number.waitFor();
    const shown = await number.getAttribute('data-number');
    assert.match(shown ?? '', /^\d{3}$/, 'the default: 3 digits');
    await page.getByText('Waiting for your answer on your phone…').waitFor();
    assert.deepEqual(await seriousViolations(page), []);
    const urlBefore = page.url();

    // The page polls; the phone answers from here.
    await page.waitForTimeout(2500);
    assert.equal(page.url(), urlBefore, 'still waiting before the answer');
    const prompt = (await promptsOf(user.phone.device)).prompts.find((p) => p.kind === 'sign-in');
    assert.ok(prompt);
    const res = await user.phone.device.request('POST', `/app/api/prompts/${prompt.id}/approve`, { number: shown });
    assert.equal(res.status, 200, JSON.stringify(res.json));

    const landed = await backAtApp(page, callbacks);
    assert.ok(new URL(landed).searchParams.get('code'), 'an authorization code, with no click on "Continue"');
    assert.deepEqual(suite.violations, []);
    assert.deepEqual(consoleErrors, []);
  });

  it('the pairing page says when the phone paired, and continues by itself once it approved its test prompt', async () => {
    const user = await suite.newUser();
    const page = await suite.openPage();
    watchConsole(page);
    await page.goto(`${suite.server.url}/account`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/account');
    const s = suite.server.server.services;
    await addQuestion(s.store, (a) => s.hasher.hash(a), user.id);

    await page.goto(`${suite.server.url}/account/two-step/push`);
    const code = await page.locator('#push-code').textContent();
    assert.match(code ?? '', /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    await page.getByRole('img', { name: 'QR code that pairs your phone with your account' }).waitFor();
    await page.getByText('Waiting for your phone to pair…').waitFor();
    assert.deepEqual(await seriousViolations(page), []);

    const device = SoftwareDevice.create(suite.server.url);
    const paired = await device.pair(code!, null, 'Browser phone');
    assert.equal(paired.status, 201, JSON.stringify(paired.json));
    await page.getByText('Now approve the test prompt on your phone: type the number below.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/account/two-step/push', 'still on the pairing page');
    // The page shows the number the phone's test prompt asks for, as the person reads it.
    const number = (await page.getByLabel('The number to type on your phone').textContent())?.trim();
    assert.match(number ?? '', /^\d+$/);

    const test = (await promptsOf(device)).prompts.find((p) => p.kind === 'test');
    assert.ok(test);
    assert.equal((await device.request('POST', `/app/api/prompts/${test.id}/approve`, { number })).status, 200);
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
    const methods = (await s.store.authenticators.listForUser(user.id)).filter((a) => a.kind === 'push');
    assert.deepEqual(methods.map((a) => a.label), ['Browser phone']);
    assert.deepEqual(suite.violations, []);
    assert.deepEqual(consoleErrors, []);
  });
});
