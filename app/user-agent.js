/**
 * This browser's name and system, from its user agent: the default name of a new device ("Firefox on
 * Linux"), and whether it is an iPhone or iPad outside the Home Screen (where Safari gives no push).
 */
import { t } from './strings.js';

const BROWSERS = [
  [/Edg(A|iOS)?\//, 'Edge'],
  [/SamsungBrowser\//, 'Samsung Internet'],
  [/OPR\/|Opera/, 'Opera'],
  [/Firefox\/|FxiOS\//, 'Firefox'],
  [/Chrome\/|CriOS\/|Chromium\//, 'Chrome'],
  [/Safari\//, 'Safari'],
];

const touchMac = () => /Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1;

const SYSTEMS = [
  [/Android/, 'Android'],
  [/iPhone/, 'iPhone'],
  [/iPad/, 'iPad'],
  [/CrOS/, 'ChromeOS'],
  [/Windows/, 'Windows'],
  [/Macintosh|Mac OS X/, 'Mac'],
  [/Linux/, 'Linux'],
];

const first = (list, ua) => list.find(([pattern]) => pattern.test(ua))?.[1];

export function browserName(ua = navigator.userAgent) {
  return first(BROWSERS, ua) ?? null;
}

export function systemName(ua = navigator.userAgent) {
  if (touchMac()) return 'iPad';
  return first(SYSTEMS, ua) ?? null;
}

/** "Firefox on Linux", or whichever of the two is known. */
export function defaultDeviceName() {
  const [browser, os] = [browserName(), systemName()];
  if (browser && os) return t('deviceOn', { browser, os });
  return browser ?? os ?? '';
}

export const isAppleMobile = () => ['iPhone', 'iPad'].includes(systemName());

/** Opened from the Home Screen (or installed elsewhere) rather than in a browser tab. */
export const isStandalone = () => matchMedia('(display-mode: standalone)').matches || navigator.standalone === true;
