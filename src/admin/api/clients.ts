/**
 * The clients routes of the admin API: list, one client, register (its secret in the 201 answer, once),
 * edit, delete, disable and enable, and rotate the secret with a grace period. Each is one operation
 * (src/admin/operations/clients.ts), which validates the settings exactly as the CLI's are (oidc/clients.ts).
 */
import { z } from 'zod';
import { AUTH_METHODS, CIBA_MODES, GRANT_TYPES, ID_TOKEN_ALGS } from '../../oidc/clients.ts';
import { LEVELS } from '../../security/level.ts';
import {
  addClient, disableClient, enableClient, listClients, MAX_GRACE_SECONDS, removeClient, rotateClientSecret, showClient, updateClient, type ClientView,
} from '../operations/clients.ts';
import { defineRoute, idPageQuery, iso, isoOrNull, pageById, pageOf, time } from './route.ts';

const clientRef = z.strictObject({ client_id: z.string().min(1).max(200) });

const clientSchema = z.strictObject({
  client_id: z.string(),
  name: z.string(),
  metadata: z.record(z.string(), z.unknown()).describe('The client\'s OpenID Connect metadata (redirect URIs, grant types, auth method, …); never a secret'),
  disabled_at: time.nullable(),
  created_at: time,
}).meta({ id: 'Client' });

const clientJson = (c: ClientView): z.input<typeof clientSchema> => ({
  client_id: c.clientId, name: c.name, metadata: c.metadata, disabled_at: isoOrNull(c.disabledAt), created_at: iso(c.createdAt),
});

const uri = z.string().max(2000);
const settings = {
  name: z.string().max(100),
  redirect_uris: z.array(uri).max(20),
  post_logout_redirect_uris: z.array(uri).max(20),
  backchannel_logout_uri: uri,
  backchannel_logout_session_required: z.boolean(),
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1),
  auth_method: z.enum(AUTH_METHODS),
  id_token_alg: z.enum(ID_TOKEN_ALGS),
  minimum_acr: z.enum(LEVELS),
  first_party: z.boolean().describe('An application of the same operator: its users are not asked for consent'),
  logo_uri: uri,
  scopes: z.array(z.string().max(100)).max(50).describe('The scopes it may ask for; the admin API\'s (admin:…) only for a client whose one grant type is client_credentials'),
};

const newClient = z.strictObject({
  ...settings,
  redirect_uris: settings.redirect_uris.optional(),
  post_logout_redirect_uris: settings.post_logout_redirect_uris.optional(),
  backchannel_logout_uri: settings.backchannel_logout_uri.optional(),
  backchannel_logout_session_required: settings.backchannel_logout_session_required.optional(),
  grant_types: settings.grant_types.optional(),
  auth_method: settings.auth_method.optional(),
  id_token_alg: settings.id_token_alg.optional(),
  minimum_acr: settings.minimum_acr.optional(),
  first_party: settings.first_party.optional(),
  logo_uri: settings.logo_uri.optional(),
  scopes: settings.scopes.optional(),
  public: z.boolean().optional().describe('A single-page or native app: no secret, PKCE required'),
  pkce: z.boolean().optional().describe('false lets an older confidential app skip PKCE'),
  resource_server: z.boolean().optional().describe('An API that may introspect tokens issued to other clients'),
  ciba_mode: z.enum(CIBA_MODES).optional(),
  ciba_notification_endpoint: uri.optional(),
}).meta({ id: 'NewClient' });

/** An edit: what is given replaces what the client had; null takes an optional setting away. */
const clientChanges = z.strictObject({
  name: settings.name.optional(),
  redirect_uris: settings.redirect_uris.optional(),
  post_logout_redirect_uris: settings.post_logout_redirect_uris.optional(),
  grant_types: settings.grant_types.optional(),
  auth_method: settings.auth_method.optional(),
  id_token_alg: settings.id_token_alg.optional(),
  first_party: settings.first_party.optional(),
  backchannel_logout_session_required: settings.backchannel_logout_session_required.optional(),
  minimum_acr: settings.minimum_acr.nullable().optional(),
  logo_uri: settings.logo_uri.nullable().optional(),
  backchannel_logout_uri: settings.backchannel_logout_uri.nullable().optional(),
  scopes: settings.scopes.nullable().optional(),
}).meta({ id: 'ClientChanges' });

export const clientRoutes = [
  defineRoute({
    method: 'get', path: '/clients', operationId: 'listClients', tag: 'clients', permission: 'clients.read', action: 'clients.list',
    summary: 'The registered clients (never their secrets)',
    query: z.strictObject({ ...idPageQuery }), status: 200, response: pageOf(clientSchema),
    async handle({ services, actor, query }) {
      const page = pageById(await listClients(services, actor), (c) => c.clientId, query);
      return { items: page.items.map(clientJson), next_cursor: page.next_cursor };
    },
  }),
  defineRoute({
    method: 'post', path: '/clients', operationId: 'addClient', tag: 'clients', permission: 'clients.write', action: 'clients.add',
    summary: 'Register a client; a confidential client\'s secret is in this answer once, and never again',
    body: newClient, status: 201,
    response: z.strictObject({
      client_id: z.string(), client_secret: z.string().nullable().describe('Null for a public client'), metadata: z.record(z.string(), z.unknown()),
    }).meta({ id: 'RegisteredClient' }),
    async handle({ services, actor, body }) {
      const client = await addClient(services, actor, {
        name: body.name, redirectUris: body.redirect_uris, postLogoutRedirectUris: body.post_logout_redirect_uris,
        backchannelLogoutUri: body.backchannel_logout_uri, backchannelLogoutSessionRequired: body.backchannel_logout_session_required,
        grantTypes: body.grant_types, public: body.public, authMethod: body.auth_method, idTokenAlg: body.id_token_alg,
        resourceServer: body.resource_server, minimumAcr: body.minimum_acr, pkce: body.pkce, firstParty: body.first_party,
        logoUri: body.logo_uri, cibaMode: body.ciba_mode, cibaNotificationEndpoint: body.ciba_notification_endpoint, scopes: body.scopes,
      });
      return { client_id: client.clientId, client_secret: client.clientSecret ?? null, metadata: client.metadata };
    },
  }),
  defineRoute({
    method: 'get', path: '/clients/{client_id}', operationId: 'getClient', tag: 'clients', permission: 'clients.read', action: 'clients.show',
    summary: 'One client (never its secret)',
    params: clientRef, status: 200, response: clientSchema,
    async handle({ services, actor, params }) {
      return clientJson(await showClient(services, actor, params.client_id));
    },
  }),
  defineRoute({
    method: 'patch', path: '/clients/{client_id}', operationId: 'updateClient', tag: 'clients', permission: 'clients.write', action: 'clients.update',
    summary: 'Change a client: what is given replaces what it had (a list the whole list); null takes a setting away',
    params: clientRef, body: clientChanges, status: 200, response: clientSchema,
    async handle({ services, actor, params, body }) {
      return clientJson(await updateClient(services, actor, params.client_id, {
        name: body.name, redirectUris: body.redirect_uris, postLogoutRedirectUris: body.post_logout_redirect_uris, grantTypes: body.grant_types,
        authMethod: body.auth_method, idTokenAlg: body.id_token_alg, firstParty: body.first_party,
        backchannelLogoutSessionRequired: body.backchannel_logout_session_required, minimumAcr: body.minimum_acr,
        logoUri: body.logo_uri, backchannelLogoutUri: body.backchannel_logout_uri, scopes: body.scopes,
      }));
    },
  }),
  defineRoute({
    method: 'delete', path: '/clients/{client_id}', operationId: 'removeClient', tag: 'clients', permission: 'clients.write', action: 'clients.remove',
    summary: 'Remove a client for good', params: clientRef, status: 204,
    async handle({ services, actor, params }) {
      await removeClient(services, actor, params.client_id);
    },
  }),
  defineRoute({
    method: 'post', path: '/clients/{client_id}/disable', operationId: 'disableClient', tag: 'clients', permission: 'clients.write', action: 'clients.disable',
    summary: 'Disable a client: it gets invalid_client everywhere and its tokens stop working until it is enabled again',
    params: clientRef, status: 200, response: clientSchema,
    async handle({ services, actor, params }) {
      return clientJson(await disableClient(services, actor, params.client_id));
    },
  }),
  defineRoute({
    method: 'post', path: '/clients/{client_id}/enable', operationId: 'enableClient', tag: 'clients', permission: 'clients.write', action: 'clients.enable',
    summary: 'Enable a disabled client again', params: clientRef, status: 200, response: clientSchema,
    async handle({ services, actor, params }) {
      return clientJson(await enableClient(services, actor, params.client_id));
    },
  }),
  defineRoute({
    method: 'post', path: '/clients/{client_id}/rotate-secret', operationId: 'rotateClientSecret', tag: 'clients', permission: 'clients.write', action: 'clients.rotate_secret',
    summary: 'Give a confidential client a new secret (in this answer, once); the old one keeps working for the grace period',
    params: clientRef,
    body: z.strictObject({
      grace_seconds: z.int().min(0).max(MAX_GRACE_SECONDS).optional().describe('How long the old secret keeps working: 0 to 30 days in seconds (default 24 hours; 0 for a leaked secret)'),
    }).optional(),
    status: 200,
    response: z.strictObject({
      client_id: z.string(), client_secret: z.string(), previous_secret_valid_until: time.nullable().describe('Null when the old secret stopped at once'),
    }).meta({ id: 'RotatedSecret' }),
    async handle({ services, actor, params, body }) {
      const r = await rotateClientSecret(services, actor, params.client_id, body?.grace_seconds === undefined ? {} : { graceSeconds: body.grace_seconds });
      return { client_id: r.clientId, client_secret: r.clientSecret, previous_secret_valid_until: isoOrNull(r.previousValidUntil) };
    },
  }),
];
