/**
 * Signing keys: listed with their state, and rotated (a new active key per algorithm). The VAPID key of
 * mobile app prompts: rotated (phones subscribe again with the new one when they next open the app).
 */
import webpush from 'web-push';
import { activationDelay, ensureSigningKeys, retireSigningKey, rotateSigningKeys } from '../../oidc/keys.ts';
import { vapidKey } from '../../push/prompts.ts';
import type { Services } from '../../services.ts';
import type { KeyAlg, KeyState, SigningKey } from '../../store/signing-keys.ts';
import { actorFields, OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';

export interface KeyView {
  kid: string;
  alg: KeyAlg;
  state: KeyState;
  createdAt: Date;
  /** When a next key starts signing; null for the others. */
  activatesAt: Date | null;
  retiredAt: Date | null;
  /** Until when a retired key stays in the JWKS; null for an active or next one. */
  publishedUntil: Date | null;
}

const keyView = (k: SigningKey): KeyView => ({
  kid: k.kid, alg: k.alg, state: k.state, createdAt: k.createdAt, activatesAt: k.activatesAt, retiredAt: k.retiredAt, publishedUntil: k.expiresAt,
});

export async function listKeys(services: Services, actor: Actor): Promise<KeyView[]> {
  return audited(services, actor, { action: 'keys.list', target: { type: 'signing_key' }, outcome: (keys) => ({ after: { count: keys.length } }) }, async () => {
    authorize(actor, 'keys.read');
    await ensureSigningKeys(services.store, services.config);
    return (await services.store.signingKeys.list()).map(keyView);
  });
}

/**
 * Rotates the keys of these algorithms (all configured ones by default): each new key is published now and
 * signs after `activationDelay` (at once with `now`, for a key thought compromised); the new kids.
 */
export async function rotateKeys(services: Services, actor: Actor, algs?: readonly string[], opts: { now?: boolean } = {}): Promise<string[]> {
  const configured = services.config.keys.algorithms;
  const who = actorFields(actor);
  const active = async () => (await services.store.signingKeys.list()).filter((k) => k.state === 'active').map((k) => ({ kid: k.kid, alg: k.alg }));
  return audited(services, actor, {
    action: 'keys.rotate',
    target: { type: 'signing_key' },
    before: { active: await active() },
    outcome: (kids) => ({ after: { rotated: kids, signsAfterSeconds: opts.now ? 0 : activationDelay(services.config) }, event: { type: 'keys.rotated', ...who, details: { kids, ...who.details } } }),
  }, async () => {
    authorize(actor, 'keys.write');
    for (const a of algs ?? []) {
      if (!configured.includes(a as KeyAlg)) throw new OperationError('keys.alg_unknown', `${a} must be one of ${configured.join(', ')}`, 400, 'alg');
    }
    await ensureSigningKeys(services.store, services.config);
    return rotateSigningKeys(services.store, services.config, (algs ?? [...configured]) as KeyAlg[], opts);
  });
}

/**
 * Replaces the VAPID key pair that signs pushes to phones. A push service refuses a push signed with
 * another key than the one a subscription was made with, so until a phone opens the app and subscribes
 * again (it sees the new key in GET /app/api/prompts) it gets no push and is asked while open. Returns the
 * new key's id and public key (never the private key).
 */
export async function rotateVapidKey(services: Services, actor: Actor): Promise<{ id: string; publicKey: string }> {
  const who = actorFields(actor);
  const current = await vapidKey(services.store);
  return audited(services, actor, {
    action: 'keys.rotate_vapid',
    target: { type: 'vapid_key', id: current.id },
    before: { current: current.id },
    outcome: (key) => ({ targetId: key.id, after: { current: key.id }, event: { type: 'keys.rotated', ...who, details: { vapid: key.id, ...who.details } } }),
  }, async () => {
    authorize(actor, 'keys.write');
    const key = await services.store.pushDevices.rotateVapidKey(webpush.generateVAPIDKeys());
    return { id: key.id, publicKey: key.publicKey };
  });
}

/** The metadata by which a client has something signed with one of the provider's keys. */
const SIGNED_RESPONSE_ALGS = ['id_token_signed_response_alg', 'userinfo_signed_response_alg', 'introspection_signed_response_alg', 'authorization_signed_response_alg'];

/** Why the provider still needs an active key of `alg`: each reason a sentence part; none when it does not. */
async function needsOf(services: Services, alg: KeyAlg): Promise<string[]> {
  const { config } = services;
  const reasons: string[] = [];
  if (config.keys.algorithms.includes(alg)) reasons.push(`${alg} is in keys.algorithms`);
  // oidc-provider's default for a client that names no algorithm, Latchkey's own apps included.
  if (alg === 'RS256') reasons.push('RS256 signs the ID tokens of clients that name no algorithm');
  // The JWT access tokens of a resource (provider.ts: jwtAlg, ES256 by default).
  for (const [url, r] of Object.entries(config.resources)) if ((r.jwtAlg ?? 'ES256') === alg) reasons.push(`the resource ${url} signs its access tokens with ${alg}`);
  const users = (await services.store.clients.list()).filter((c) => SIGNED_RESPONSE_ALGS.some((m) => c.metadata[m] === alg));
  if (users.length) reasons.push(`client(s) ${users.map((c) => `${c.name} (${c.clientId})`).join(', ')} use ${alg}`);
  return reasons;
}

/**
 * Retires one key now: it signs nothing more (another key of its algorithm, or none) and stays in the JWKS
 * until every token it may have signed has expired, as after a rotation. Refused while the provider needs
 * an active key of its algorithm (configured, used by a client or a resource): a rotation is the way to
 * replace it (`keys rotate --alg`), and retire is for an algorithm being given up. Running servers stop
 * signing with it within keys.refreshSeconds, and a key of its algorithm still waiting for its turn is
 * withdrawn with it. A waiting key may be retired alone: the rotation is called off. A sensitive action:
 * the console asks for a fresh step-up.
 */
export async function retireKey(services: Services, actor: Actor, kid: string): Promise<KeyView> {
  const who = actorFields(actor);
  const stored = (await services.store.signingKeys.list()).find((k) => k.kid === kid);
  return audited(services, actor, {
    action: 'keys.retire',
    target: { type: 'signing_key', id: kid },
    before: stored && keyView(stored),
    outcome: (key) => ({ after: key, event: { type: 'keys.retired', ...who, details: { kid, alg: key.alg, ...who.details } } }),
  }, async () => {
    authorize(actor, 'keys.write');
    if (!stored) throw new OperationError('keys.not_found', `no signing key with kid ${kid}`, 404);
    if (stored.state === 'retired') throw new OperationError('keys.already_retired', `${kid} is already retired; it stays published until ${stored.expiresAt?.toISOString() ?? 'its tokens have expired'}`, 409);
    // A key waiting for its turn (keys rotate) is withdrawn: it never signed, and the active key goes on.
    const needs = stored.state === 'next' ? [] : await needsOf(services, stored.alg);
    if (needs.length) {
      throw new OperationError('keys.needed', `${kid} is the active ${stored.alg} key and is still needed (${needs.join('; ')}): rotate it instead (keys rotate --alg ${stored.alg}), which retires it the same way`, 409);
    }
    const retired = await retireSigningKey(services.store, services.config, kid);
    if (!retired) throw new OperationError('keys.already_retired', `${kid} was retired meanwhile`, 409);
    return keyView(retired);
  });
}
