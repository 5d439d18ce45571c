/**
 * level.ts as a table: every combination of the proofs a sign-in can gather (the password, the security
 * question, an authenticator app, a text message, a recovery code, a device-bound and a synced passkey, a
 * security key with and without user verification), taken from the factors' own proof shapes, against the
 * README's table of levels written as rules here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { factorFor, factors } from '../../src/factors/index.ts';
import { passwordProof } from '../../src/factors/password.ts';
import type { Proof } from '../../src/factors/types.ts';
import { ACR, levelOf, proofsFromAmr, reachesTop, strongestFirst } from '../../src/security/level.ts';

const shape = (kind: Parameters<typeof factorFor>[0], i = 0): Proof => {
  const f = factorFor(kind);
  return { ...[f.proof, ...(f.alsoProves ?? [])][i]!, kind, authenticatorId: `${kind}-${i}` };
};

const PROOFS: Record<string, Proof> = {
  password: passwordProof('u'),
  question: shape('security-question'),
  app: shape('totp'),
  text: shape('sms'),
  recovery: shape('recovery-code'),
  devicePasskey: shape('webauthn'),
  syncedPasskey: shape('webauthn', 1),
  key: shape('security-key'),
  keyWithPin: shape('security-key', 1),
};

/** The README's "Levels and methods" table, as rules. */
function expected(names: string[]) {
  const has = (n: string) => names.includes(n);
  const knowledge = has('password') || has('question');
  const possession = has('app') || has('text') || has('recovery');
  const passkey = has('devicePasskey') || has('syncedPasskey') || has('keyWithPin');
  // A key without its PIN is possession only: phishing-resistant with a factor of another kind (knowledge), one factor alone.
  const acr = passkey || (has('key') && knowledge) ? ACR.phr : knowledge && possession ? ACR.mfa : ACR.oneFactor;
  const amr = new Set<string>();
  if (has('password')) amr.add('pwd');
  if (has('question')) amr.add('kba');
  if (has('app') || has('recovery')) amr.add('otp');
  if (has('text')) amr.add('sms');
  if (has('devicePasskey')) amr.add('hwk').add('user');
  if (has('syncedPasskey')) amr.add('swk').add('user');
  if (has('key')) amr.add('hwk');
  if (has('keyWithPin')) amr.add('hwk').add('user');
  if (acr !== ACR.oneFactor) amr.add('mfa');
  return { acr, amr: [...amr].sort() };
}

const names = Object.keys(PROOFS);
const combinations = Array.from({ length: 2 ** names.length - 1 }, (_, mask) => names.filter((_, i) => ((mask + 1) >> i) & 1));

describe('levels: every combination of proofs', () => {
  it(`gives the README's acr and amr for all ${combinations.length} combinations`, () => {
    for (const combo of combinations) {
      const level = levelOf(combo.map((n) => PROOFS[n]!));
      assert.deepEqual({ acr: level.acr, amr: [...level.amr].sort() }, expected(combo), combo.join(' + '));
    }
  });

  it('matches the README rows exactly, in order', () => {
    const rows: [string[], string, string[]][] = [
      [['password'], ACR.oneFactor, ['pwd']],
      [['password', 'question'], ACR.oneFactor, ['pwd', 'kba']],
      [['password', 'app'], ACR.mfa, ['pwd', 'otp', 'mfa']],
      [['password', 'text'], ACR.mfa, ['pwd', 'sms', 'mfa']],
      [['password', 'recovery'], ACR.mfa, ['pwd', 'otp', 'mfa']],
      [['devicePasskey'], ACR.phr, ['hwk', 'user', 'mfa']],
      [['syncedPasskey'], ACR.phr, ['swk', 'user', 'mfa']],
      [['password', 'devicePasskey'], ACR.phr, ['pwd', 'hwk', 'user', 'mfa']],
      [['password', 'keyWithPin'], ACR.phr, ['pwd', 'hwk', 'user', 'mfa']],
      [['password', 'key'], ACR.phr, ['pwd', 'hwk', 'mfa']],
      [['keyWithPin'], ACR.phr, ['hwk', 'user', 'mfa']],
      [['key'], ACR.oneFactor, ['hwk']],
    ];
    for (const [combo, acr, amr] of rows) assert.deepEqual(levelOf(combo.map((n) => PROOFS[n]!)), { acr, amr }, combo.join(' + '));
    assert.deepEqual(levelOf([PROOFS.password!], ['rba']).amr, ['pwd', 'rba']);
  });

  it('reads every amr back into proofs that give the same level (step-up keeps a session\'s proofs)', () => {
    for (const combo of combinations) {
      const level = levelOf(combo.map((n) => PROOFS[n]!));
      const again = levelOf(proofsFromAmr(level.amr, 's'));
      assert.equal(again.acr, level.acr, combo.join(' + '));
      assert.deepEqual([...again.amr].sort(), [...level.amr].sort(), combo.join(' + '));
    }
  });

  it('refuses to derive a level from no proof at all', () => {
    assert.throws(() => levelOf([]), /at least one proof/);
  });
});

describe('the methods from the strongest to the weakest (the order of "Password & security")', () => {
  it('orders the registry by the level each method reaches with the password, then by how it is offered', () => {
    const registry = Object.values(factors);
    const order = ['webauthn', 'security-key', 'totp', 'push', 'sms', 'recovery-code', 'security-question'];
    assert.deepEqual(strongestFirst(registry).map((f) => f.kind), order);
    // An authenticator app and a phone's prompt prove alike and are offered alike: a tie, kept in the given order.
    const tie = (kinds: string[]) => kinds.map((k) => (k === 'push' ? 'totp' : k));
    assert.deepEqual(tie(strongestFirst([...registry].reverse()).map((f) => f.kind)), tie(order), 'whatever the registry order (a passkey verifies its user; a key may not)');
    assert.deepEqual(registry.filter((f) => reachesTop(f.proof)).map((f) => f.kind), ['webauthn', 'security-key'], 'only the phishing-resistant methods are marked the strongest');
  });

  it('puts a restricted offer (SMS) after the usual ones at the same level, and keeps the given order otherwise', () => {
    const app = factorFor('totp');
    const a = { name: 'a', proof: app.proof, offer: 'restricted' as const };
    const b = { name: 'b', proof: app.proof, offer: 'normal' as const };
    const c = { name: 'c', proof: app.proof, offer: 'normal' as const };
    assert.deepEqual(strongestFirst([a, b, c]).map((m) => m.name), ['b', 'c', 'a']);
  });
});
