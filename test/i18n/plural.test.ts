import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createTranslator, translatorFor } from '../../src/i18n.ts';

describe('plural forms', () => {
  it('picks the form of the first number among the values, by the language\'s plural rules', () => {
    const strings = { left: { one: '{who}: {n} code left', other: '{who}: {n} codes left' } };
    const t = createTranslator(strings, true, 'en');
    assert.equal(t('left', { who: 'Ann', n: 1 }), 'Ann: 1 code left');
    assert.equal(t('left', { who: 'Ann', n: 0 }), 'Ann: 0 codes left');
    assert.equal(t('left', { who: 'Ann', n: 2 }), 'Ann: 2 codes left');
    assert.equal(t('left', { who: 'Ann' }), 'Ann: {n} codes left', 'no number: the general form');
    assert.ok(t.has('left'));
    assert.throws(() => t('left.one.more'), /missing string/);
  });

  it('says "1 second" and "1 Sekunde" where the product waits one second, and the plural otherwise', () => {
    assert.match(translatorFor('en', true)('signIn.throttled', { seconds: 1 }), /Wait 1 second and/);
    assert.match(translatorFor('en', true)('signIn.throttled', { seconds: 30 }), /Wait 30 seconds and/);
    assert.match(translatorFor('de', true)('signIn.throttled', { seconds: 1 }), /Warten Sie 1 Sekunde und/);
    assert.match(translatorFor('de', true)('signIn.throttled', { seconds: 5 }), /Warten Sie 5 Sekunden und/);
    assert.match(translatorFor('en', true)('account.twoStep.recoveryReplace', { left: 1 }), /You have 1 unused code\./);
  });
});
