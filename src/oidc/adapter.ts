/**
 * One oidc-provider adapter for every model, on the database. The Client model reads the `clients`
 * table (registered by the CLI or admin API) and is read-only from oidc-provider's side.
 */
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Config } from '../config.ts';
import type { Store } from '../store/index.ts';
import type { Payload } from '../store/oidc-payloads.ts';

/** How long a revoked grant stays marked: the longest life of any token or code issued under it. */
export const revokedGrantSeconds = (config: Pick<Config, 'ttl'>): number => Math.max(...Object.values(config.ttl));

/** How long an expired CIBA request stays findable, to be answered expired_token. */
const EXPIRED_CIBA_KEPT_SECONDS = 600;

/**
 * `revokedGrantSeconds`: how long a revoked grant stays marked, at least the longest life of a token.
 */
export function createAdapterClass(store: Store, revokedGrantSeconds: number) {
  return class DatabaseAdapter implements Adapter {
    constructor(readonly name: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      if (this.name === 'Client') throw new Error('clients are registered through Latchkey, not oidc-provider');
      // A token of a grant revoked meanwhile (a code redeemed twice in parallel): the request that would
      // have answered it gets invalid_grant instead.
      // A CIBA request is kept a while past its time (oidc-provider checks its `exp` itself), so that a late
      // poll is answered expired_token, as CIBA §11 says, rather than invalid_grant.
      const kept = this.name === 'BackchannelAuthenticationRequest' && expiresIn ? expiresIn + EXPIRED_CIBA_KEPT_SECONDS : expiresIn;
      if (!(await store.oidc.upsert(this.name, id, payload as Payload, kept))) throw new errors.InvalidGrant('grant revoked');
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') {
        const client = await store.clients.find(id);
        // A disabled client is one oidc-provider does not know: invalid_client everywhere, and its tokens
        // are found without their client (inactive at introspection, refused at userinfo).
        if (!client || client.disabledAt) return undefined;
        return { ...client.metadata, client_id: client.clientId, ...(client.secret ? { client_secret: client.secret } : {}) } as AdapterPayload;
      }
      return (await store.oidc.find(this.name, id)) as AdapterPayload | undefined;
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return (await store.oidc.findByUserCode(this.name, userCode)) as AdapterPayload | undefined;
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return (await store.oidc.findByUid(this.name, uid)) as AdapterPayload | undefined;
    }

    /**
     * oidc-provider checks `consumed` and then consumes, two steps that two instances (or two parallel
     * requests) can interleave. The conditional write decides: the loser gets invalid_grant, so a code
     * or a rotating refresh token is redeemed exactly once. A second use is a replay whether it comes
     * after the first or alongside it (RFC 9700 §4.5.3): like oidc-provider for the later one, the grant
     * is revoked with whatever the first use issued, and the mark keeps it so if the first is still storing.
     */
    async consume(id: string): Promise<void> {
      if (!(await store.oidc.consume(this.name, id))) {
        if (this.name === 'PushedAuthorizationRequest') throw new errors.InvalidRequestUri('request_uri already used');
        const grantId = this.name === 'AuthorizationCode' || this.name === 'RefreshToken' ? await store.oidc.grantOf(this.name, id) : undefined;
        if (grantId) await store.oidc.revokeGrant(grantId, revokedGrantSeconds);
        throw new errors.InvalidGrant(`${this.name === 'RefreshToken' ? 'refresh token' : 'grant'} already used`);
      }
    }

    /**
     * A destroyed grant is revoked for good (a code redeemed twice, a refresh token replayed, a sign-out,
     * "Remove access"): no token of it is stored or found again, even one a parallel request was issuing.
     */
    async destroy(id: string): Promise<void> {
      if (this.name === 'Grant') await store.oidc.revokeGrant(id, revokedGrantSeconds);
      else await store.oidc.destroy(this.name, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.oidc.revokeByGrantId(this.name, grantId);
    }
  };
}
