/** Signing keys: listed with their state, and rotated (a new active key per algorithm). */
import { ensureSigningKeys, rotateSigningKeys } from '../../oidc/keys.ts';
import type { Services } from '../../services.ts';
import type { KeyAlg } from '../../store/signing-keys.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';

export interface KeyView {
  kid: string;
  alg: KeyAlg;
  state: string;
  createdAt: Date;
  retiredAt: Date | null;
  /** Until when a retired key stays in the JWKS; null for an active one. */
  publishedUntil: Date | null;
}

export async function listKeys(services: Services): Promise<KeyView[]> {
  await ensureSigningKeys(services.store, services.config);
  return (await services.store.signingKeys.list()).map((k) => ({
    kid: k.kid, alg: k.alg, state: k.state, createdAt: k.createdAt, retiredAt: k.retiredAt, publishedUntil: k.expiresAt,
  }));
}

/** Rotates the keys of these algorithms (all configured ones by default); the new kids. */
export async function rotateKeys(services: Services, actor: Actor, algs?: readonly string[]): Promise<string[]> {
  const configured = services.config.keys.algorithms;
  for (const a of algs ?? []) {
    if (!configured.includes(a as KeyAlg)) throw new OperationError('keys.alg_unknown', `${a} must be one of ${configured.join(', ')}`, 400, 'alg');
  }
  await ensureSigningKeys(services.store, services.config);
  const kids = await rotateSigningKeys(services.store, services.config, (algs ?? [...configured]) as KeyAlg[]);
  const who = actorFields(actor);
  await services.events.record({ type: 'keys.rotated', ...who, details: { kids, ...who.details } });
  return kids;
}
