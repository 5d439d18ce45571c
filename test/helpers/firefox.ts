/**
 * The phone: a real Firefox ESR (Debian's package), headless, driven over WebDriver BiDi by puppeteer-core.
 * Firefox is the browser whose push service can be pointed at a local server (`dom.push.serverURL`, spoken
 * by `PushService` in ./push-service.ts); Chromium's only speaks to Google's. Its profile is fresh and kept
 * off the network, so nothing but loopback is ever contacted.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

export const FIREFOX_PATH = '/usr/bin/firefox-esr';

export interface FirefoxOptions {
  /** The push service's WebSocket URL (`PushService.webSocketUrl`), e.g. `ws://127.0.0.1:PORT/`. */
  pushServerUrl: string;
  /** More preferences, over the ones below. */
  prefs?: Record<string, string | number | boolean>;
}

export interface Firefox {
  browser: Browser;
  profileDir: string;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Push to a local server, and notifications shown without a prompt. Each is needed (tried without): an
 * insecure `ws://` server URL is refused unless allowed; without the default permission `subscribe()`
 * waits on a prompt (ignorePermission lets it through, but `showNotification` still fails); with the
 * system backend a headless Firefox shows no notification, and its own alert window is what a test clicks.
 */
function pushPrefs(pushServerUrl: string): Record<string, string | number | boolean> {
  return {
    'dom.push.serverURL': pushServerUrl,
    'dom.push.testing.allowInsecureServerURL': true,
    'dom.push.connection.enabled': true,
    'dom.push.testing.ignorePermission': true,
    'permissions.default.desktop-notification': 1,
    'alerts.useSystemBackend': false,
  };
}

/**
 * Off the network, over what puppeteer's profile already turns off: telemetry, updates, safe browsing,
 * captive portal and connectivity checks, remote settings, Normandy and experiments, region and geo lookups.
 * Checked with strace: a run of the push test makes no connection and no DNS query beyond loopback.
 */
const OFFLINE_PREFS: Record<string, string | number | boolean> = {
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': 'data:,',
  'toolkit.telemetry.archive.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.update.url': '',
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.shield.optoutstudies.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'browser.safebrowsing.provider.google4.updateURL': '',
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.http.speculative-parallel-limit': 0,
  'network.trr.mode': 5,
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'extensions.getAddons.cache.enabled': false,
  'extensions.update.enabled': false,
  'extensions.systemAddon.update.enabled': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'geo.provider.network.url': '',
  'media.gmp-manager.url': '',
  'media.gmp-manager.updateEnabled': false,
  'identity.fxaccounts.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
};

/** Launches `/usr/bin/firefox-esr` headless with a fresh profile; throws if it is not installed (a test never skips for it). */
export async function launchFirefox({ pushServerUrl, prefs = {} }: FirefoxOptions): Promise<Firefox> {
  await access(FIREFOX_PATH).catch(() => {
    throw new Error(`Firefox ESR is not installed at ${FIREFOX_PATH} (apt-get install firefox-esr): the push tests need a real Firefox`);
  });
  const profileDir = await mkdtemp(path.join(tmpdir(), 'latchkey-firefox-'));
  try {
    const browser = await puppeteer.launch({
      browser: 'firefox',
      protocol: 'webDriverBiDi',
      executablePath: FIREFOX_PATH,
      headless: true,
      userDataDir: profileDir,
      // Lets WebDriver BiDi reach Firefox's own windows, where its notifications are (clickNotification).
      args: ['--remote-allow-system-access'],
      // A release build ignores `services.settings.server` (and asks firefox.settings.services.mozilla.com)
      // unless this is set. MOZ_DISABLE_NONLOCAL_CONNECTIONS would also do, but makes Firefox crash on any
      // visit off loopback, which a test would see as a puzzling "Frame detached".
      env: { ...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: '1' },
      extraPrefsFirefox: { ...OFFLINE_PREFS, ...pushPrefs(pushServerUrl), ...prefs },
    });
    return {
      browser,
      profileDir,
      async close() {
        await browser.close().catch(() => {});
        await rm(profileDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profileDir, { recursive: true, force: true });
    throw error;
  }
}

/** The raw WebDriver BiDi connection under puppeteer's Firefox browser (its `connection`, not on the `Browser` type). */
interface BidiConnection {
  send(method: string, params: object): Promise<{ result: unknown }>;
}

const ALERT_URL = 'chrome://global/content/alerts/alert.xhtml';

/**
 * Clicks a notification Firefox shows, as a person would: with `alerts.useSystemBackend` off, each one is a
 * window of Firefox's own (alert.xhtml), and clicking its box makes the service worker's `notificationclick`
 * fire as a trusted event (so `event.waitUntil` works). WebDriver BiDi's input actions do not reach
 * Firefox's own windows; a script there does. `body` picks the notification whose text contains it.
 */
export async function clickNotification(firefox: Firefox, body?: string, timeoutMs = 5000): Promise<void> {
  const connection = (firefox.browser as unknown as { connection: BidiConnection }).connection;
  // Clicked only once the alert has loaded (before that its click handler may not be attached yet).
  const click = `(() => {
    if (document.readyState !== 'complete') return 'loading';
    const text = document.getElementById('alertTextLabel')?.textContent ?? '';
    const wanted = ${JSON.stringify(body ?? null)};
    if (wanted !== null && !text.includes(wanted)) return text;
    document.getElementById('alertBox').click();
    return true;
  })()`;
  const alertsShown = async () => {
    const { result } = await connection.send('browsingContext.getTree', { 'moz:scope': 'chrome' });
    return (result as { contexts: { context: string; url: string }[] }).contexts.filter((c) => c.url === ALERT_URL);
  };
  const deadline = Date.now() + timeoutMs;
  let seen: unknown[] = [];
  let clicked: string | undefined;
  do {
    const alerts = await alertsShown();
    // A click took when the service worker closed the notification (notificationclick): its alert is gone.
    if (clicked && !alerts.some((a) => a.context === clicked)) return;
    seen = [];
    for (const { context } of alerts) {
      const { result: evaluated } = await connection.send('script.evaluate', { expression: click, target: { context }, awaitPromise: false });
      const value = (evaluated as { result?: { value?: unknown } }).result?.value;
      if (value === true) {
        clicked = context;
        break;
      }
      seen.push(value);
    }
    await new Promise((resolve) => setTimeout(resolve, clicked ? 250 : 50));
  } while (Date.now() < deadline);
  if (clicked) throw new Error(`the notification "${body ?? ''}" was clicked but never closed within ${timeoutMs} ms (no notificationclick?)`);
  throw new Error(`no notification ${body === undefined ? '' : `"${body}" `}shown within ${timeoutMs} ms; shown: ${seen.length ? JSON.stringify(seen) : 'none'}`);
}
