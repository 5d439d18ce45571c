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
  // Keys nest by dots, and a key may itself hold dots (errors are keyed by codes like "csrf.origin").
  const find = (node: string | Tree | undefined, parts: string[]): string | undefined => {
    if (parts.length === 0) return typeof node === 'string' ? node : undefined;
    if (typeof node !== 'object') return undefined;
    for (let i = 1; i <= parts.length; i++) {
      const name = parts.slice(0, i).join('.');
      if (!Object.hasOwn(node, name)) continue;
      const found = find(node[name], parts.slice(i));
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const lookup = (key: string): string | undefined => find(strings, key.split('.'));
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
