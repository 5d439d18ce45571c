/**
 * "Chrome on Linux": a browser and an operating system named from a User-Agent header, for people to
 * recognise their sessions. Deliberately small (no dependency): the common browsers and systems, in the
 * order that tells them apart (Edge and Opera also say Chrome; Chrome also says Safari). Not a security check.
 * Kept rather than ua-parser-js (AGPL from version 2) or bowser: a label for people needs these few names,
 * not a database of every device, and a wrong guess costs nothing.
 */
export interface Device {
  browser: string | undefined;
  os: string | undefined;
}

const BROWSERS: readonly [RegExp, string][] = [
  [/\bEdg(e|A|iOS)?\//, 'Edge'],
  [/\b(OPR|Opera)\//, 'Opera'],
  [/\bSamsungBrowser\//, 'Samsung Internet'],
  [/\b(Firefox|FxiOS)\//, 'Firefox'],
  [/\b(HeadlessChrome|Chrome|Chromium|CriOS)\//, 'Chrome'],
  [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];

const SYSTEMS: readonly [RegExp, string][] = [
  [/\bWindows\b/, 'Windows'],
  [/\bAndroid\b/, 'Android'],
  [/\b(iPhone|iPad|iPod)\b/, 'iOS'],
  [/\bCrOS\b/, 'ChromeOS'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'],
  [/\bLinux\b/, 'Linux'],
];

export function parseUserAgent(ua: string | null | undefined): Device {
  const text = (ua ?? '').slice(0, 512);
  return {
    browser: BROWSERS.find(([re]) => re.test(text))?.[1],
    os: SYSTEMS.find(([re]) => re.test(text))?.[1],
  };
}
