/**
 * Every user-facing string lives in locales/<language>.json, so a translation is one file. Templates call
 * `t('signIn.title')`; `{name}` placeholders are filled from the second argument. A missing key is a
 * programming error: it throws in development and tests, and shows the key in production (in the English
 * words when only a translation lacks it).
 *
 * Which language: each request runs inside a language scope (http/language.ts chooses it); `render.t` and the
 * templates' `t` speak the scope's language. Outside any request (start-up, background jobs, the CLI) they
 * speak English, unless the work runs inside `withLanguage(language, fn)`, as every mail does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './paths.ts';

type Tree = { [key: string]: string | Tree };
export type Translate = ((key: string, vars?: Record<string, unknown>) => string) & { has(key: string): boolean };

export function loadStrings(language = 'en'): Tree {
  if (!/^[a-z]{2}(-[A-Z]{2})?$/.test(language)) throw new Error(`bad language tag ${language}`);
  return JSON.parse(readFileSync(path.join(projectRoot, 'locales', `${language}.json`), 'utf8')) as Tree;
}

/** CLDR plural categories: a string that depends on a number is an object of these (at least `other`). */
const PLURAL_CATEGORIES = new Set(['zero', 'one', 'two', 'few', 'many', 'other']);
const isPlural = (node: string | Tree | undefined): node is Tree =>
  typeof node === 'object' && Object.hasOwn(node, 'other') && Object.keys(node).every((k) => PLURAL_CATEGORIES.has(k));

/**
 * `language` picks the plural rules: a string given as `{ "one": "…{left} code…", "other": "…{left} codes…" }`
 * takes the form of the first number among the vars (`Intl.PluralRules`), so no sentence reads "1 codes".
 */
export function createTranslator(strings: Tree, strict: boolean, language = DEFAULT_LANGUAGE): Translate {
  const plurals = new Intl.PluralRules(language);
  // Keys nest by dots, and a key may itself hold dots (errors are keyed by codes like "csrf.origin").
  const find = (node: string | Tree | undefined, parts: string[]): string | Tree | undefined => {
    if (parts.length === 0) return typeof node === 'string' || isPlural(node) ? node : undefined;
    if (typeof node !== 'object') return undefined;
    for (let i = 1; i <= parts.length; i++) {
      const name = parts.slice(0, i).join('.');
      if (!Object.hasOwn(node, name)) continue;
      const found = find(node[name], parts.slice(i));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const lookup = (key: string): string | Tree | undefined => find(strings, key.split('.'));
  const form = (forms: Tree, vars: Record<string, unknown>): string => {
    const count = Object.values(vars).find((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const chosen = count === undefined ? forms.other : (forms[plurals.select(count)] ?? forms.other);
    return typeof chosen === 'string' ? chosen : '';
  };
  const t = (key: string, vars: Record<string, unknown> = {}) => {
    const found = lookup(key);
    if (found === undefined) {
      if (strict) throw new Error(`missing string ${key}`);
      return key;
    }
    const text = typeof found === 'string' ? found : form(found, vars);
    return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
  };
  return Object.assign(t, { has: (key: string) => lookup(key) !== undefined });
}

/** The language of the strings' keys, and of every page and mail nobody asked otherwise for. */
export const DEFAULT_LANGUAGE = 'en';

const LOCALE_FILE = /^([a-z]{2}(?:-[A-Z]{2})?)\.json$/;
let supported: readonly string[] | undefined;

/** The languages there are strings for: one file each in locales/ (read once), sorted, English among them. */
export function supportedLanguages(): readonly string[] {
  supported ??= Object.freeze(readdirSync(path.join(projectRoot, 'locales')).flatMap((f) => LOCALE_FILE.exec(f)?.[1] ?? []).sort());
  return supported;
}

const names = new Map<string, string>();

/** A language's name in itself ("Deutsch"), as a language picker lists it. */
export function languageName(language: string): string {
  let name = names.get(language);
  if (!name) names.set(language, (name = new Intl.DisplayNames([language], { type: 'language' }).of(language) ?? language));
  return name;
}

/**
 * The supported language for one BCP 47 tag: the same tag (in any case), else its base language
 * ("de-AT" and "de-Latn-CH" → "de"); undefined for anything else, malformed or unknown.
 */
export function matchLanguage(tag: unknown): string | undefined {
  if (typeof tag !== 'string' || tag.length > 35 || !/^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(tag)) return undefined;
  const languages = supportedLanguages();
  const lower = tag.toLowerCase();
  return languages.find((l) => l.toLowerCase() === lower) ?? languages.find((l) => l === lower.split('-')[0]);
}

/** OpenID Connect's `ui_locales`: tags separated by spaces, most preferred first; the first supported one wins. */
export function fromUiLocales(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  for (const tag of value.split(' ', 20)) {
    const found = matchLanguage(tag);
    if (found) return found;
  }
  return undefined;
}

/**
 * The `Accept-Language` header (RFC 9110 §12.5.4): the supported language with the highest q-value (the
 * earlier one on a tie); "q=0" means "not this one", and "*" adds nothing to the default.
 */
export function fromAcceptLanguage(header: string | undefined): string | undefined {
  if (!header) return undefined;
  let best: { language: string; q: number } | undefined;
  for (const part of header.slice(0, 1024).split(',', 32)) {
    const [tag = '', ...params] = part.trim().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => /^q=/i.test(p));
    const q = qParam === undefined ? 1 : /^q=(0(\.\d{0,3})?|1(\.0{0,3})?)$/i.test(qParam) ? Number(qParam.slice(2)) : 0;
    const language = matchLanguage(tag.trim());
    if (language && q > 0 && (!best || q > best.q)) best = { language, q };
  }
  return best?.language;
}

/** The language of the work in progress: one holder per request (http/language.ts), or one per `withLanguage`. */
export interface LanguageHolder {
  language: string;
  /** The person chose it on the language picker: nothing the request says may change it. */
  chosen: boolean;
  /** What the layout's language picker needs of this request: its CSRF token and the local path to come back to. */
  picker?: { csrf(): string; back: string | undefined };
}

const scope = new AsyncLocalStorage<LanguageHolder>();

/** The language to speak now: the request's, the one `withLanguage` set, or English. */
export function currentLanguage(): string {
  return scope.getStore()?.language ?? DEFAULT_LANGUAGE;
}

/** The holder of the work in progress (undefined outside any request or `withLanguage`). */
export function languageHolder(): LanguageHolder | undefined {
  return scope.getStore();
}

/** Runs `fn` (and everything it starts) with `holder` as its language; later code may change the holder's language. */
export function runInLanguage<T>(holder: LanguageHolder, fn: () => T): T {
  return scope.run(holder, fn);
}

/** Runs `fn` (and everything it starts) in `language`, whatever the request around it speaks: for a mail to a user. */
export function withLanguage<T>(language: string, fn: () => T): T {
  return scope.run({ language: matchLanguage(language) ?? DEFAULT_LANGUAGE, chosen: true }, fn);
}

/**
 * The `ui_locales` of an OpenID Connect request, as soon as the code learns it (an interaction's parameters, a
 * protocol error or logout page): it becomes the request's language unless the person chose one on the picker.
 */
export function preferUiLocales(value: unknown): void {
  const holder = scope.getStore();
  const language = fromUiLocales(value);
  if (holder && language && !holder.chosen) holder.language = language;
}

/** The language a mail to this user is written in: the one stored for them, else the request's, else English. */
export function languageOf(user: { language: string | null }): string {
  return matchLanguage(user.language) ?? currentLanguage();
}

const translators = new Map<string, Translate>();

/**
 * The translator for one language, loaded once. A key that a translation lacks is a missing string like any
 * other where `strict` (development, tests: the translation must be complete); in production it falls back to
 * the English words. Keys exist or not by the English strings, so `t.has` answers the same in every language.
 */
export function translatorFor(language: string, strict: boolean): Translate {
  const id = `${language}:${strict}`;
  let t = translators.get(id);
  if (!t) {
    const english = createTranslator(loadStrings(DEFAULT_LANGUAGE), strict);
    if (language === DEFAULT_LANGUAGE) t = english;
    else {
      const own = createTranslator(loadStrings(language), true, language);
      t = Object.assign((key: string, vars?: Record<string, unknown>) => {
        if (own.has(key) || strict) return own(key, vars);
        return english(key, vars);
      }, { has: english.has });
    }
    translators.set(id, t);
  }
  return t;
}

/** `t` in the language of the work in progress (see currentLanguage), for the renderer and its callers. */
export function requestTranslator(strict: boolean): Translate {
  const t = (key: string, vars?: Record<string, unknown>) => translatorFor(currentLanguage(), strict)(key, vars);
  return Object.assign(t, { has: (key: string) => translatorFor(DEFAULT_LANGUAGE, strict).has(key) });
}
