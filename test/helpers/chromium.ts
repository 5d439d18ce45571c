/**
 * Real headless Chromium (Debian's package) through playwright-core. Each test gets its own context
 * (its own cookies). `virtualAuthenticator` adds a WebAuthn platform authenticator (or a security key) over CDP.
 */
import { after, before } from 'node:test';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { RelyingParty } from './rp.ts';
import { startTestServer, type TestServer } from './server.ts';

export const CHROMIUM_PATH = process.env.LATCHKEY_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS });
}

export async function newContext(browser: Browser, options: BrowserContextOptions = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ locale: 'en-US', ...options });
  context.setDefaultTimeout(10_000);
  return context;
}

/** Collects the page's CSP violations and uncaught errors into `violations`. */
export function watch(page: Page, violations: string[]): Page {
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  page.on('pageerror', (e) => violations.push(e.message));
  return page;
}

export interface AppBrowser {
  context: BrowserContext;
  page: Page;
  /** CSP violations and uncaught page errors seen so far: a page test asserts this stays empty. */
  violations: string[];
  /** Every URL the browser was sent to under `appOrigin` (the relying party's redirect URIs), in order. */
  callbacks: string[];
}

/**
 * A fresh context (its own cookies) whose visits to the relying party at `appOrigin` are answered by the
 * test and remembered, so a sign-in can end at the app's redirect URI without a server there.
 */
export async function openAppBrowser(browser: Browser, appOrigin: string, violations: string[] = []): Promise<AppBrowser> {
  const context = await newContext(browser);
  const callbacks: string[] = [];
  await context.route(`${appOrigin}/**`, async (route) => {
    callbacks.push(route.request().url());
    await route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' });
  });
  const page = watch(await context.newPage(), violations);
  return { context, page, violations, callbacks };
}

/** What kind of virtual authenticator: where it is attached, and what it can do. */
export interface VirtualAuthenticatorOptions {
  /** `internal`: this device's own (a platform authenticator, face or fingerprint); `usb`, `nfc`, `ble`: a security key. */
  transport?: 'internal' | 'usb' | 'nfc' | 'ble';
  /** It can hold discoverable (resident) credentials. */
  hasResidentKey?: boolean;
  /** It can verify its user (a PIN, a fingerprint); it then always does. */
  hasUserVerification?: boolean;
}

/**
 * Adds a CTAP2 virtual authenticator: by default an internal (platform) one with resident keys and user
 * verification; `{ transport: 'usb' }` makes it a security key. Several may be added to one page; the
 * browser picks the one that fits a ceremony's attachment.
 */
export async function virtualAuthenticator(page: Page, options: VirtualAuthenticatorOptions = {}): Promise<{ authenticatorId: string; send: (method: string, params?: object) => Promise<unknown> }> {
  const { transport = 'internal', hasResidentKey = true, hasUserVerification = true } = options;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = (await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport, hasResidentKey, hasUserVerification, isUserVerified: hasUserVerification, automaticPresenceSimulation: true },
  })) as { authenticatorId: string };
  return { authenticatorId, send: (method, params) => cdp.send(method as never, params as never) as Promise<unknown> };
}

/**
 * Waits until the browser is back at the app (a new entry in `callbacks`), allowing on the consent page if
 * it is shown on the way; returns the URL the app was sent to.
 */
export async function backAtApp(page: Page, callbacks: string[]): Promise<string> {
  const allow = page.getByRole('button', { name: 'Allow' });
  const before = callbacks.length;
  for (let i = 0; i < 100 && callbacks.length === before; i++) {
    if (await allow.isVisible().catch(() => false)) await allow.click().catch(() => {});
    await page.waitForTimeout(100);
  }
  if (callbacks.length === before) throw new Error(`not back at the app; stuck at ${page.url()}`);
  const landed = callbacks.at(-1)!;
  // The route saw the request; wait until the page is there too, or the test's next page.goto races the
  // redirect still arriving (and Chromium lets the redirect win).
  await page.waitForURL((u) => u.href === landed);
  return landed;
}

/** The relying party's origin in the Chromium suites: its visits are answered by openAppBrowser. */
export const APP = 'http://localhost:9999';

export interface ChromiumSuite {
  server: TestServer;
  /** The app "Notes", with its redirect URI at APP/cb. */
  rp: RelyingParty;
  browser: Browser;
  /** CSP violations and page errors of every page of every test: a suite asserts this stays empty. */
  violations: string[];
  /** A browser of its own (cookies), whose visits to the app are answered and remembered; closed after the suite. */
  openBrowser(): Promise<AppBrowser>;
  /** A page in a context of its own (a colour scheme, a viewport, a time zone…), watched; closed after the suite. */
  openPage(options?: BrowserContextOptions): Promise<Page>;
  /** A new user with a numbered address (`<prefix><n>@example.com`) and a password. */
  newUser(): Promise<{ id: string; email: string; password: string }>;
}

/**
 * The scaffold every Chromium suite shares, registered as hooks of the calling describe: a test server
 * (its configuration from `config()`, asked when the suite starts, so after the suite's own earlier
 * `before` hooks: a mailbox, an SMS receiver), the app, Chromium, and the contexts it opens.
 */
export function chromiumSuite(userPrefix: string, config: () => Record<string, unknown> = () => ({})): ChromiumSuite {
  const contexts: BrowserContext[] = [];
  let users = 0;
  const suite = {
    violations: [] as string[],
    async openBrowser() {
      const app = await openAppBrowser(suite.browser, APP, suite.violations);
      contexts.push(app.context);
      return app;
    },
    async openPage(options: BrowserContextOptions = {}) {
      const context = await newContext(suite.browser, options);
      contexts.push(context);
      return watch(await context.newPage(), suite.violations);
    },
    async newUser() {
      const n = ++users;
      const credentials = { email: `${userPrefix}${n}@example.com`, password: `${userPrefix} user ${n} password` };
      return { ...credentials, id: (await suite.server.addUser(credentials)).id };
    },
  } as ChromiumSuite;
  before(async () => {
    suite.server = await startTestServer({ config: config() });
    suite.rp = await RelyingParty.create(suite.server.url, await suite.server.addClient({ name: 'Notes', redirectUris: [`${APP}/cb`] }));
    suite.browser = await launchChromium();
  });
  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await suite.browser?.close();
    await suite.server?.stop();
  });
  return suite;
}
