/**
 * Real headless Chromium (Debian's package) through playwright-core. Each test gets its own context
 * (its own cookies). `virtualAuthenticator` adds a WebAuthn platform authenticator over CDP.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS });
}

export async function newContext(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ locale: 'en-US' });
  context.setDefaultTimeout(10_000);
  return context;
}

/** Adds a CTAP2 internal (platform) authenticator with resident keys and user verification. */
export async function virtualAuthenticator(page: Page): Promise<{ authenticatorId: string; send: (method: string, params?: object) => Promise<unknown> }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = (await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })) as { authenticatorId: string };
  return { authenticatorId, send: (method, params) => cdp.send(method as never, params as never) as Promise<unknown> };
}
