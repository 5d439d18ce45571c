/**
 * A cookie-keeping HTTP client that behaves like a browser without JavaScript: follows redirects on our
 * own origin (stopping at anything else, such as a relying party's redirect URI), sends cookies back, and
 * fills in forms by reading the hidden fields of the page.
 */
import assert from 'node:assert/strict';

export interface Page {
  status: number;
  url: string;
  headers: Headers;
  body: string;
}

export class CookieClient {
  readonly jar = new Map<string, string>();

  constructor(readonly origin: string) {}

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  /** One request, no redirect following. */
  async request(url: string, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Page> {
    const headers: Record<string, string> = { accept: 'text/html', ...init.headers };
    if (this.jar.size) headers.cookie = this.cookieHeader();
    let body: string | undefined;
    if (init.form) {
      body = new URLSearchParams(init.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin ??= this.origin;
    }
    const res = await fetch(new URL(url, this.origin), { method: init.method ?? (init.form ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.store(res);
    return { status: res.status, url: new URL(url, this.origin).toString(), headers: res.headers, body: await res.text() };
  }

  /** Follows redirects while they stay on our origin; returns the last page, or the foreign URL it stopped at. */
  async follow(url: string, init: Parameters<CookieClient['request']>[1] = {}): Promise<Page & { stoppedAt?: string }> {
    let page = await this.request(url, init);
    for (let i = 0; i < 20; i++) {
      const location = page.headers.get('location');
      if (page.status < 300 || page.status >= 400 || !location) return page;
      const next = new URL(location, page.url);
      if (next.origin !== this.origin) return { ...page, stoppedAt: next.toString() };
      page = await this.request(next.toString());
    }
    throw new Error('too many redirects');
  }

  /** Submits the form whose action contains `actionPart`, with its hidden fields plus `fields`. */
  async submit(page: Page, actionPart: string, fields: Record<string, string> = {}, extraHeaders: Record<string, string> = {}) {
    const form = findForm(page.body, actionPart);
    return this.follow(new URL(form.action, page.url).toString(), { form: { ...form.hidden, ...fields }, headers: extraHeaders });
  }
}

/** One form of a page: its action (entities decoded), its hidden fields, and its inner HTML. */
export interface ParsedForm {
  action: string;
  hidden: Record<string, string>;
  inner: string;
}

/** The one form parser of the tests: every form on the page, in order. */
export function formsOf(html: string): ParsedForm[] {
  const out: ParsedForm[] = [];
  for (const [, attrs, inner] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = decodeEntities(/action="([^"]*)"/.exec(attrs!)?.[1] ?? '');
    const hidden: Record<string, string> = {};
    for (const [input] of inner!.matchAll(/<input\b[^>]*>/g)) {
      if (!/type="hidden"/.test(input)) continue;
      const name = /name="([^"]*)"/.exec(input)?.[1];
      if (name) hidden[name] = decodeEntities(/value="([^"]*)"/.exec(input)?.[1] ?? '');
    }
    out.push({ action, hidden, inner: inner! });
  }
  return out;
}

/** The first form whose action contains `actionPart`. */
export function findForm(html: string, actionPart: string): ParsedForm {
  const form = formsOf(html).find((f) => f.action.includes(actionPart));
  if (!form) throw new Error(`no form with action containing ${actionPart}`);
  return form;
}

/** The CSRF token of the page's first form that has one. */
export function csrfOf(page: string | { body: string }): string {
  const token = formsOf(typeof page === 'string' ? page : page.body).find((f) => f.hidden.csrf)?.hidden.csrf;
  if (!token) throw new Error('no form with a CSRF token on the page');
  return token;
}

/** The JSON in the `<script type="application/json">` of the form with this action (a WebAuthn ceremony's options). */
export function optionsIn<T>(page: Page, action: string): T {
  const form = formsOf(page.body).find((f) => f.action.includes(action));
  if (!form) throw new Error(`no form with action ${action} on ${page.url} (${page.status}): ${page.body.slice(0, 300)}`);
  const json = /<script type="application\/json">([\s\S]*?)<\/script>/.exec(form.inner)?.[1];
  assert.ok(json, `the options are in the form with action ${action}`);
  return JSON.parse(json) as T;
}

function decodeEntities(s: string): string {
  return s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}
