/** Every route of the admin API, in one list: routes.ts makes the router of it and openapi.ts the document. */
import { auditRoutes } from './audit.ts';
import { clientRoutes } from './clients.ts';
import { keyRoutes } from './keys.ts';
import type { ApiRoute } from './route.ts';
import { userRoutes } from './users.ts';

export const API_PREFIX = '/admin/api/v1';

export const API_ROUTES: readonly ApiRoute[] = [...userRoutes, ...clientRoutes, ...keyRoutes, ...auditRoutes];

/** What the audit log calls the target of each group of routes. */
export const TARGET_TYPES: { readonly [T in ApiRoute['tag']]: string } = { users: 'user', clients: 'client', keys: 'signing_key', audit: 'audit_log' };
