/**
 * Remembered consent, per user and app: the union of everything the user allowed it. `remember` merges in
 * one statement (two consents at once on two instances both land); `forget` is "Remove access".
 */
import { deleted, type Db } from './db.ts';

export interface Consent {
  clientId: string;
  scopes: string[];
  claims: string[];
  resources: Record<string, string[]>;
  grantedAt: Date;
  updatedAt: Date;
}

export interface Allowed {
  scopes: readonly string[];
  claims: readonly string[];
  resources: Readonly<Record<string, readonly string[]>>;
}

export interface Row {
  user_id: string; client_id: string; scopes: string[]; claims: string[]; resources: Record<string, string[]>; granted_at: Date; updated_at: Date;
}

export const toConsent = (r: Row): Consent => ({
  clientId: r.client_id, scopes: r.scopes, claims: r.claims, resources: r.resources, grantedAt: r.granted_at, updatedAt: r.updated_at,
});

const unique = (values: readonly string[]) => [...new Set(values)];

/** The columns of a consent, in the order `Row` lists them (for a statement that reads one with something else). */
export const CONSENT_COLUMNS = ['user_id', 'client_id', 'scopes', 'claims', 'resources', 'granted_at', 'updated_at'] as const satisfies readonly (keyof Row)[];

export function consentsRepository(db: Db) {
  return {
    async find(userId: string, clientId: string): Promise<Consent | undefined> {
      const row = await db<Row>('consents').where({ user_id: userId, client_id: clientId }).first();
      return row && toConsent(row);
    },
    /** Oldest first. */
    async listForUser(userId: string): Promise<Consent[]> {
      return (await db<Row>('consents').where({ user_id: userId }).orderBy('granted_at')).map(toConsent);
    },
    /** Adds what was allowed now to what was allowed before (never narrows it). */
    async remember(userId: string, clientId: string, allowed: Allowed): Promise<void> {
      const resources = Object.fromEntries(Object.entries(allowed.resources).map(([r, s]) => [r, unique(s)]));
      await db.raw(
        `insert into consents (user_id, client_id, scopes, claims, resources) values (?, ?, ?::text[], ?::text[], ?::jsonb)
         on conflict (user_id, client_id) do update set
           scopes = array(select distinct unnest(consents.scopes || excluded.scopes) order by 1),
           claims = array(select distinct unnest(consents.claims || excluded.claims) order by 1),
           resources = (
             select coalesce(jsonb_object_agg(k, (select jsonb_agg(distinct v) from jsonb_array_elements_text(
               coalesce(consents.resources -> k, '[]'::jsonb) || coalesce(excluded.resources -> k, '[]'::jsonb)) v)), '{}'::jsonb)
             from (select jsonb_object_keys(consents.resources) k union select jsonb_object_keys(excluded.resources)) keys
           ),
           updated_at = now()`,
        [userId, clientId, unique(allowed.scopes), unique(allowed.claims), JSON.stringify(resources)],
      );
    },
    /** "Remove access": true when there was something to forget. */
    async forget(userId: string, clientId: string): Promise<boolean> {
      return (await deleted(db('consents').where({ user_id: userId, client_id: clientId }).delete())) > 0;
    },
  };
}

export type ConsentsRepository = ReturnType<typeof consentsRepository>;
