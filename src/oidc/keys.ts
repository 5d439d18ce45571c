/**
 * Signing keys: generated on first start, sealed at rest, rotated by `latchkey keys rotate`.
 * A rotated-in key is published before it signs (every instance serves it in its JWKS first); a
 * rotated-out key stays in the JWKS until every token it signed has expired.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Config } from '../config.ts';
import { operandSafeId } from './ids.ts';
import type { Store } from '../store/index.ts';
import type { JsonWebKey, KeyAlg } from '../store/signing-keys.ts';

export function generateKey(alg: KeyAlg): { publicJwk: JsonWebKey; privateJwk: JsonWebKey } {
  let pair: { publicKey: KeyObject; privateKey: KeyObject };
  switch (alg) {
    case 'RS256':
      pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      break;
    case 'ES256':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'EdDSA':
      pair = generateKeyPairSync('ed25519');
      break;
  }
  const kid = operandSafeId(12);
  const meta = { kid, alg, use: 'sig' };
  return {
    publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), ...meta },
    privateJwk: { ...pair.privateKey.export({ format: 'jwk' }), ...meta },
  };
}

/** Creates the missing active keys (one per configured algorithm). Safe to run from several instances at once. */
export async function ensureSigningKeys(store: Store, config: Config): Promise<KeyAlg[]> {
  const created: KeyAlg[] = [];
  const present = new Set((await store.signingKeys.published()).filter((k) => k.state === 'active').map((k) => k.alg));
  for (const alg of config.keys.algorithms) {
    if (present.has(alg)) continue;
    const { publicJwk, privateJwk } = generateKey(alg);
    if (await store.signingKeys.insertActiveIfMissing(alg, publicJwk, privateJwk)) created.push(alg);
  }
  return created;
}

/** How long a retired key must stay published: the longest lifetime of anything it may have signed. */
export function publicationWindow(config: Config): number {
  const resourceTtls = Object.values(config.resources).map((r) => r.accessTokenTTL ?? config.ttl.accessToken);
  // Other instances may go on signing with a retired key until they next refresh their keys (refreshSeconds).
  return Math.max(config.ttl.idToken, config.ttl.accessToken, config.ttl.clientCredentials, ...resourceTtls) + config.keys.refreshSeconds + 300;
}

/**
 * How long a rotated-in key waits, published but signing nothing, before it becomes the active key: two
 * key refreshes, so that every running instance serves it in its JWKS before any instance signs with it.
 * Without the wait, a token signed by the instance that rotated would not verify against the JWKS of an
 * instance that has not yet looked for new keys.
 */
export function activationDelay(config: Config): number {
  return 2 * config.keys.refreshSeconds;
}

/**
 * Rotates the keys of these algorithms: each new key is published now and signs from `activationDelay`
 * on, or at once with `now` (a key thought compromised: tokens signed in the next keys.refreshSeconds may
 * not verify at instances that have not reloaded their keys yet). The new kids.
 */
export async function rotateSigningKeys(store: Store, config: Config, algs: readonly KeyAlg[] = config.keys.algorithms, opts: { now?: boolean } = {}): Promise<string[]> {
  const kids: string[] = [];
  for (const alg of algs) {
    const { publicJwk, privateJwk } = generateKey(alg);
    await store.signingKeys.rotate(alg, publicJwk, privateJwk, publicationWindow(config), opts.now ? 0 : activationDelay(config));
    kids.push(publicJwk.kid);
  }
  return kids;
}

/** Promotes the rotated-in keys whose time has come (one instance does each); the kids promoted. */
export async function promoteDueKeys(store: Store, config: Config): Promise<string[]> {
  return store.signingKeys.promoteDue(publicationWindow(config));
}

/**
 * The private JWKS handed to oidc-provider. Active keys come first (oidc-provider signs with the first key
 * of an algorithm); a next or retired key is marked `key_ops: ["verify"]`, which oidc-provider's key
 * selection honours, so it does not sign (yet, or again, even when no active key of its algorithm is
 * left: `keys retire`), and is published for the tokens it will sign or has signed.
 */
export async function loadJwks(store: Store): Promise<{ keys: JsonWebKey[] }> {
  const keys = await store.signingKeys.published();
  return { keys: keys.map((k) => (k.state === 'active' ? k.privateJwk : { ...k.privateJwk, key_ops: ['verify'] })) };
}

/**
 * Retires one active key now: it signs nothing more and stays published as long as a rotation keeps it.
 * Returns the retired key, or undefined when no active key has that kid.
 */
export async function retireSigningKey(store: Store, config: Config, kid: string) {
  return store.signingKeys.retire(kid, publicationWindow(config));
}
