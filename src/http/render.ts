/** Server-rendered pages: nunjucks with autoescaping on, one layout, no inline script or style. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';
import type { Config } from '../config.ts';
import { currentLanguage, DEFAULT_LANGUAGE, languageHolder, languageName, requestTranslator, supportedLanguages, type Translate } from '../i18n.ts';
import { viewsDir } from '../paths.ts';

export type Render = ((template: string, vars?: Record<string, unknown>) => string) & { t: Translate };

/** A piece of HTML made by our own code, which templates output as it is (autoescaping leaves it alone). */
export type Markup = nunjucks.runtime.SafeString;

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const utcFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * A time for people in the current language, in UTC (the server does not know the browser's time zone):
 * "3 Mar 2025, 14:05 UTC", "3. März 2025, 14:05 UTC". English keeps the day-month-year order of en-GB.
 */
export function timeText(d: Date): string {
  const language = currentLanguage();
  let format = utcFormats.get(language);
  if (!format) {
    format = new Intl.DateTimeFormat(language === DEFAULT_LANGUAGE ? 'en-GB' : language, {
      day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC',
    });
    utcFormats.set(language, format);
  }
  return `${format.format(d)} UTC`;
}

/**
 * A time as `<time datetime="…">3 Mar 2025, 14:05 UTC</time>`: readable without JavaScript, and rewritten to
 * the viewer's own time zone by /assets/local-time.js.
 */
export function timeMarkup(d: Date): Markup {
  return new nunjucks.runtime.SafeString(`<time datetime="${d.toISOString()}">${escapeHtml(timeText(d))}</time>`);
}

/**
 * `t` as templates call it: a placeholder filled with Markup (such as a time) keeps its markup, so the rest of
 * the sentence and every other value are escaped here and the result is Markup. Without Markup it is plain `t`.
 */
function tWithMarkup(t: Translate): (key: string, vars?: Record<string, unknown>) => string | Markup {
  return (key, vars = {}) => {
    const names = Object.keys(vars);
    if (!names.some((name) => vars[name] instanceof nunjucks.runtime.SafeString)) return t(key, vars);
    // Each placeholder filled with itself gives the sentence with its placeholders still in place.
    const sentence = escapeHtml(t(key, Object.fromEntries(names.map((name) => [name, `{${name}}`]))));
    const html = sentence.replace(/\{(\w+)\}/g, (m, name: string) => {
      if (!Object.hasOwn(vars, name)) return m;
      const value = vars[name];
      return value instanceof nunjucks.runtime.SafeString ? value.toString() : escapeHtml(String(value));
    });
    return new nunjucks.runtime.SafeString(html);
  };
}

/**
 * What the layout's language picker shows (http/language.ts answers it): the languages in their own names,
 * the current one, this request's CSRF token and the page to come back to. Nothing outside a request, or
 * with only one language.
 */
function languagePicker() {
  const picker = languageHolder()?.picker;
  const languages = supportedLanguages();
  if (!picker || languages.length < 2) return undefined;
  return {
    current: currentLanguage(),
    languages: languages.map((code) => ({ code, name: languageName(code) })),
    csrf: picker.csrf(),
    back: picker.back,
  };
}

/** `autoescape: false` is for plain-text email bodies only. */
export function createRenderer(config: Config, { autoescape = true }: { autoescape?: boolean } = {}): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(viewsDir, { noCache: config.env === 'development' }), {
    autoescape,
    throwOnUndefined: false,
  });
  // `t` speaks the language of the request (or mail) being rendered: see i18n.ts.
  const t = requestTranslator(config.env !== 'production');
  env.addGlobal('productName', config.productName);
  env.addGlobal('logoUrl', config.branding.logoUrl);
  env.addGlobal('t', tWithMarkup(t));
  env.addGlobal('lang', currentLanguage);
  env.addGlobal('languagePicker', languagePicker);
  const render = Object.assign((template: string, vars: Record<string, unknown> = {}) => env.render(template, vars), { t });
  environments.set(render, env);
  // In production the sign-in flow's pages are compiled before the first sign-in, not during it (the
  // rest on first use, as before; tests and the bench skip this to start fast).
  if (config.env === 'production' && autoescape) precompileTemplates(render, SIGN_IN_TEMPLATES);
  return render;
}

/** The layout, its partials, the sign-in flow and the error page. */
const SIGN_IN_TEMPLATES = ['layout.njk', '_csrf.njk', '_language-picker.njk', 'interaction', 'errors'];

/** Each renderer's nunjucks environment, for precompileTemplates(). */
const environments = new WeakMap<Render, nunjucks.Environment>();

/**
 * Compiles templates into `render`'s cache now: `names` are files or directories under views/ (all of
 * views/ when absent). nunjucks already compiles a template once and keeps it (FileSystemLoader without
 * noCache) in every env but development, which recompiles to show edits; this only moves the compiling
 * of a page's first showing (≈ 20-70 ms each) to start-up. Returns how many templates were compiled.
 */
export function precompileTemplates(render: Render, names: readonly string[] = ['']): number {
  const env = environments.get(render);
  if (!env) return 0;
  let count = 0;
  const compile = (name: string) => {
    if (name.endsWith('.njk')) {
      env.getTemplate(name, true);
      count++;
      return;
    }
    for (const entry of readdirSync(path.join(viewsDir, name), { withFileTypes: true })) {
      const child = name ? `${name}/${entry.name}` : entry.name;
      if (entry.isDirectory() || entry.name.endsWith('.njk')) compile(child);
    }
  };
  for (const name of names) compile(name);
  return count;
}
