import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commonPasswords, passwordProblem } from '../../src/factors/password.ts';

describe('password rules (NIST SP 800-63B)', () => {
  it('ships the common/breached password list from @zxcvbn-ts/language-common 4.1.3: 49,233 lower-case entries', () => {
    const list = commonPasswords();
    assert.equal(list.size, 49233);
    for (const p of ['123456', 'password', 'iloveyou', 'trustno1', '#name?']) assert.ok(list.has(p), p);
    assert.ok([...list].every((p) => p === p.toLowerCase() && !p.startsWith('# ')));
  });

  it('refuses passwords shorter than 8 or longer than 256 characters, counting characters, not bytes', () => {
    assert.deepEqual(passwordProblem('Tr0ub4d'), { key: 'password.tooShort', vars: { min: 8 } });
    assert.deepEqual(passwordProblem('ünïcödé'), { key: 'password.tooShort', vars: { min: 8 } }, '7 characters, 11 bytes');
    assert.equal(passwordProblem('🔑🔑🔑🔑🔑🔑🔑🔑'), undefined, '8 characters of 4 bytes each are enough');
    assert.equal(passwordProblem('x'.repeat(255) + '!'), undefined);
    assert.deepEqual(passwordProblem('x'.repeat(256) + '!'), { key: 'password.tooLong', vars: { max: 256 } });
  });

  it('refuses common and breached passwords whatever their case', () => {
    for (const p of ['password', 'PASSWORD1', 'Iloveyou1', 'qwertyuiop', 'baseball1']) {
      assert.deepEqual(passwordProblem(p), { key: 'password.tooCommon' }, p);
    }
  });

  it('has no composition rules: long passphrases of any characters pass', () => {
    for (const p of ['correct horse battery staple', 'aaaaaaaaaaaaaaaaaaaab', 'пароль-из-трёх-слов', '        spaces  too']) {
      assert.equal(passwordProblem(p), undefined, p);
    }
  });

  it('refuses the account\'s own email address, its local part and the name', () => {
    const context = { email: 'Dana.Scully@example.com', name: 'Special Agent' };
    assert.deepEqual(passwordProblem('dana.scully@example.com', context), { key: 'password.matchesAccount' });
    assert.deepEqual(passwordProblem('DANA.SCULLY', context), { key: 'password.matchesAccount' });
    assert.deepEqual(passwordProblem('special agent', context), { key: 'password.matchesAccount' });
    assert.equal(passwordProblem('dana.scully was here', context), undefined);
  });
});
