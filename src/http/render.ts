/** Server-rendered pages: nunjucks with autoescaping on, one layout, no inline script or style. */
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
  const render = (template: string, vars: Record<string, unknown> = {}) => env.render(template, vars);
  return Object.assign(render, { t });
}
