/**
 * The admin REST API as a resource server of Latchkey's own provider: clients registered for it get
 * client-credentials access tokens (JWT, audience `<issuer>/admin/api`, `adminApi.tokenSeconds`) carrying
 * some of these scopes, and nothing else reaches the API (src/admin/api/).
 */
import type { Config } from '../config.ts';

export const ADMIN_API_SCOPES = ['admin:users.read', 'admin:users.write', 'admin:clients', 'admin:keys', 'admin:audit.read'] as const;
export type AdminApiScope = (typeof ADMIN_API_SCOPES)[number];

export const adminApiResource = (config: Pick<Config, 'issuer'>) => `${config.issuer}/admin/api`;

/** The signing algorithm of the API's tokens: ES256 when the provider has such a key, else its first. */
export const adminApiAlg = (config: Pick<Config, 'keys'>) => (config.keys.algorithms.includes('ES256') ? 'ES256' : config.keys.algorithms[0]!);

/** A console step-up names its action on the sign-in page: this authorization parameter, from the console only. */
export const STEP_UP_ACTION_PARAM = 'latchkey_action';
