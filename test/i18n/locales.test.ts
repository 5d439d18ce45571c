import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadStrings } from '../../src/i18n.ts';
import { projectRoot } from '../../src/paths.ts';

/**
 * Values a translation may keep exactly as in English, per language: words that are spelt the same and are
 * the natural choice there. Everything else identical to English is taken for a string nobody translated.
 */
const SAME_AS_ENGLISH: Record<string, readonly string[]> = {
  de: [
    'Name', // the German noun is the same word (form labels: sign-up, setup, profile)
    '(optional)', // "optional" is the usual German word for a field that may stay empty
  ],
};

/** Every string in a locale file by its dotted key, e.g. "signIn.title" (a key may itself hold dots, like "csrf.origin"). */
function flatten(node: unknown, prefix = '', into = new Map<string, unknown>()): Map<string, unknown> {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) {
    into.set(prefix, node);
    return into;
  }
  for (const [key, value] of Object.entries(node)) flatten(value, prefix ? `${prefix}.${key}` : key, into);
  return into;
}

const placeholders = (text: string) => [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!))].sort();

/** Only placeholders and punctuation (like "— {product}"): nothing a translator could change. */
const nothingToTranslate = (text: string) => !/\p{L}/u.test(text.replace(/\{\w+\}/g, ''));

const english = flatten(loadStrings('en'));
const languages = readdirSync(path.join(projectRoot, 'locales'))
  .filter((file) => file.endsWith('.json') && file !== 'en.json')
  .map((file) => file.slice(0, -'.json'.length));

describe('translations match the English strings', () => {
  it('finds at least one translation to check', () => {
    assert.ok(languages.length > 0, 'no locale file besides en.json in locales/');
  });

  for (const language of languages) {
    describe(`locales/${language}.json`, () => {
      const strings = flatten(loadStrings(language));
      const shared = [...english.keys()].filter((key) => strings.has(key));

      it('has exactly the keys of en.json', () => {
        const missing = [...english.keys()].filter((key) => !strings.has(key));
        const extra = [...strings.keys()].filter((key) => !english.has(key));
        assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
      });

      it('holds a non-empty string at every key', () => {
        const notText = [...strings].filter(([, value]) => typeof value !== 'string').map(([key]) => key);
        const empty = [...strings].filter(([, value]) => typeof value === 'string' && value.trim() === '').map(([key]) => key);
        assert.deepEqual({ notText, empty }, { notText: [], empty: [] });
      });

      it('keeps the same {placeholders} as the English string', () => {
        const differing = shared
          .filter((key) => typeof strings.get(key) === 'string')
          .map((key) => ({ key, en: placeholders(english.get(key) as string), [language]: placeholders(strings.get(key) as string) }))
          .filter((d) => d.en.join() !== (d[language] as string[]).join());
        assert.deepEqual(differing, []);
      });

      it('translates every string, except the few that are the same word in both languages', () => {
        const allowed = new Set(SAME_AS_ENGLISH[language] ?? []);
        const untranslated = shared
          .filter((key) => strings.get(key) === english.get(key))
          .filter((key) => !allowed.has(english.get(key) as string) && !nothingToTranslate(english.get(key) as string));
        assert.deepEqual(untranslated, []);
      });
    });
  }
});
