import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium, openAppBrowser } from '../helpers/chromium.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('password sign-in in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let rp: RelyingParty;
  const erin = { email: 'erin@example.com', password: 'erin types this in a browser' };

  before(async () => {
    server = await startTestServer();
    await server.addUser(erin);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Browser App', redirectUris: ['http://localhost:9999/cb'] }));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server.stop();
  });

  it('signs in with the keyboard, consents, and the app receives a code it can redeem', async () => {
    const { context, page, violations, callbacks } = await openAppBrowser(browser, 'http://localhost:9999');
    const { url, checks } = await rp.authorization();
    await page.goto(url);
    await assert.doesNotReject(page.getByRole('heading', { name: 'Sign in' }).waitFor());
    await page.getByLabel('Email').fill(erin.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByLabel('Password').press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Incorrect email or password.' }).waitFor();
    assert.equal(await page.getByLabel('Email').inputValue(), erin.email, 'the email is kept after a failure');
    await page.getByLabel('Password').fill(erin.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL('http://localhost:9999/**');
    const callback = callbacks.at(-1);
    assert.ok(callback);
    const tokens = await rp.callback(callback, checks);
    assert.equal(tokens.claims()!.acr, 'urn:latchkey:acr:1fa');
    assert.deepEqual(violations, [], 'no CSP violations or page errors');
    await context.close();
  });
});
