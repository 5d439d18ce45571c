/**
 * Every user-facing string lives in locales/<language>.json, so a translation is one file. Templates call
 * `t('signIn.title')`; `{name}` placeholders are filled from the second argument. A missing key is a
 * programming error: it throws in development and tests, and shows the key in production.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from './paths.ts';

type Tree = { [key: string]: string | Tree };
export type Translate = ((key: string, vars?: Record<string, unknown>) => string) & { has(key: string): boolean };

export function loadStrings(language = 'en'): Tree {
  if (!/^[a-z]{2}(-[A-Z]{2})?$/.test(language)) throw new Error(`bad language tag ${language}`);
  return JSON.parse(readFileSync(path.join(projectRoot, 'locales', `${language}.json`), 'utf8')) as Tree;
}

export function createTranslator(strings: Tree, strict: boolean): Translate {
  const lookup = (key: string): string | undefined => {
    let node: string | Tree | undefined = strings;
    for (const part of key.split('.')) {
      if (typeof node !== 'object') return undefined;
      node = node[part];
    }
    return typeof node === 'string' ? node : undefined;
  };
  const t = (key: string, vars: Record<string, unknown> = {}) => {
    const text = lookup(key);
    if (text === undefined) {
      if (strict) throw new Error(`missing string ${key}`);
      return key;
    }
    return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
  };
  return Object.assign(t, { has: (key: string) => lookup(key) !== undefined });
}
