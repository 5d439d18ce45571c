/**
 * A client secret's grace period after a rotation: oidc-provider authenticates client_secret_basic and
 * client_secret_post with `client.compareClientSecret(presented)` (lib/shared/client_auth.js) against the
 * one `client_secret` the adapter gives it, the current secret. This provider's Client model also takes the
 * secret before the rotation, read from the store, until the end of its grace period (the clock of each
 * request decides, so it stops at that moment on every instance with nothing to clean up).
 *
 * client_secret_jwt is not covered: its secret is the HMAC key oidc-provider builds into the client's
 * keystore, one key only, so such a client's secret is rotated without a grace (clients.ts refuses one).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Store } from '../store/index.ts';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function acceptPreviousSecret(provider: Provider, store: Pick<Store, 'clients'>): void {
  // This provider's own Client class (oidc-provider makes one per instance), not a shared prototype.
  const proto = provider.Client.prototype as { compareClientSecret(this: { clientId: string; clientSecret?: string }, actual: string): Promise<boolean> };
  proto.compareClientSecret = async function compareClientSecret(actual) {
    if (typeof actual !== 'string') return false;
    const current = this.clientSecret !== undefined && secretsEqual(this.clientSecret, actual);
    const previous = (await store.clients.find(this.clientId))?.previousSecret;
    const inGrace = previous !== undefined && previous.expiresAt.getTime() > Date.now() && secretsEqual(previous.secret, actual);
    return current || inGrace;
  };
}
