/** Signing keys: listed with their state, and rotated (a new active key per algorithm). */
import { ensureSigningKeys, rotateSigningKeys } from '../../oidc/keys.ts';
import type { Services } from '../../services.ts';
import type { KeyAlg } from '../../store/signing-keys.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';

export interface KeyView {
  kid: string;
  alg: KeyAlg;
  state: string;
  createdAt: Date;
  retiredAt: Date | null;
  /** Until when a retired key stays in the JWKS; null for an active one. */
  publishedUntil: Date | null;
}

export async function listKeys(services: Services, actor: Actor): Promise<KeyView[]> {
  return audited(services, actor, { action: 'keys.list', target: { type: 'signing_key' }, outcome: (keys) => ({ after: { count: keys.length } }) }, async () => {
    authorize(actor, 'keys.read');
    await ensureSigningKeys(services.store, services.config);
    return (await services.store.signingKeys.list()).map((k) => ({
      kid: k.kid, alg: k.alg, state: k.state, createdAt: k.createdAt, retiredAt: k.retiredAt, publishedUntil: k.expiresAt,
    }));
  });
}

/** Rotates the keys of these algorithms (all configured ones by default); the new kids. */
export async function rotateKeys(services: Services, actor: Actor, algs?: readonly string[]): Promise<string[]> {
  const configured = services.config.keys.algorithms;
  const who = actorFields(actor);
  const active = async () => (await services.store.signingKeys.list()).filter((k) => k.state === 'active').map((k) => ({ kid: k.kid, alg: k.alg }));
  return audited(services, actor, {
    action: 'keys.rotate',
    target: { type: 'signing_key' },
    before: { active: await active() },
    outcome: (kids) => ({ after: { rotated: kids }, event: { type: 'keys.rotated', ...who, details: { kids, ...who.details } } }),
  }, async () => {
    authorize(actor, 'keys.write');
    for (const a of algs ?? []) {
      if (!configured.includes(a as KeyAlg)) throw new OperationError('keys.alg_unknown', `${a} must be one of ${configured.join(', ')}`, 400, 'alg');
    }
    await ensureSigningKeys(services.store, services.config);
    return rotateSigningKeys(services.store, services.config, (algs ?? [...configured]) as KeyAlg[]);
  });
}
