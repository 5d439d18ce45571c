/**
 * The signing-key routes of the admin API: list, rotate (a new active key per algorithm; the old ones stay
 * published until their tokens expire) and retire one key (src/admin/operations/keys.ts).
 */
import { z } from 'zod';
import { SIGNING_ALGS } from '../../oidc/provider.ts';
import { listKeys, retireKey, rotateKeys, type KeyView } from '../operations/keys.ts';
import { defineRoute, idPageQuery, iso, isoOrNull, pageById, pageOf, time } from './route.ts';

const keySchema = z.strictObject({
  kid: z.string(),
  alg: z.enum(SIGNING_ALGS),
  state: z.enum(['next', 'active', 'retired']).describe('next: published, signing from activates_at; active: signing; retired: published for the tokens it signed'),
  created_at: time,
  activates_at: time.nullable().describe('When a next key starts signing; null for the others'),
  retired_at: time.nullable(),
  published_until: time.nullable().describe('Until when a retired key stays in the JWKS; null for an active or next one'),
}).meta({ id: 'SigningKey' });

const keyJson = (k: KeyView): z.input<typeof keySchema> => ({
  kid: k.kid, alg: k.alg, state: k.state, created_at: iso(k.createdAt), activates_at: isoOrNull(k.activatesAt), retired_at: isoOrNull(k.retiredAt), published_until: isoOrNull(k.publishedUntil),
});

export const keyRoutes = [
  defineRoute({
    method: 'get', path: '/keys', operationId: 'listKeys', tag: 'keys', permission: 'keys.read', action: 'keys.list',
    summary: 'The signing keys and their state',
    query: z.strictObject({ ...idPageQuery }), status: 200, response: pageOf(keySchema),
    async handle({ services, actor, query }) {
      const page = pageById(await listKeys(services, actor), (k) => k.kid, query);
      return { items: page.items.map(keyJson), next_cursor: page.next_cursor };
    },
  }),
  defineRoute({
    method: 'post', path: '/keys/rotate', operationId: 'rotateKeys', tag: 'keys', permission: 'keys.write', action: 'keys.rotate',
    summary: 'A new signing key per algorithm, published at once and signing after two key refreshes (keys.refreshSeconds), when every instance publishes it; the old ones stay in the JWKS until the tokens they signed have expired',
    body: z.strictObject({
      algs: z.array(z.enum(SIGNING_ALGS)).min(1).max(3).optional().describe('Only these algorithms (default: every configured one)'),
      now: z.boolean().optional().describe('Sign with the new keys at once (a key thought compromised): tokens signed before every instance has reloaded its keys may not verify there'),
    }).optional(),
    status: 200, response: z.strictObject({ rotated: z.array(z.string()).describe('The new keys\' kids') }).meta({ id: 'RotatedKeys' }),
    async handle({ services, actor, body }) {
      return { rotated: await rotateKeys(services, actor, body?.algs, { now: body?.now === true }) };
    },
  }),
  defineRoute({
    method: 'post', path: '/keys/{kid}/retire', operationId: 'retireKey', tag: 'keys', permission: 'keys.write', action: 'keys.retire',
    summary: 'Stop signing with a key now; it stays in the JWKS until the tokens it signed have expired',
    params: z.strictObject({ kid: z.string().min(1).max(200) }), status: 200, response: keySchema,
    async handle({ services, actor, params }) {
      return keyJson(await retireKey(services, actor, params.kid));
    },
  }),
];
