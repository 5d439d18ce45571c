import type { Knex } from 'knex';

/**
 * Console roles, kept on the user (`users.roles`, a JSON array): `admin` (everything), `helpdesk` (users
 * only, never an account that holds a role) and `auditor` (read-only, the audit log included). The first
 * administrator of the setup page and `users add --admin` were already stored as `["admin"]`; anything else
 * a hand-edited row may hold (not an array, an unknown role, a duplicate) is tidied to the known roles, and a
 * check keeps it so. An index serves the administrators' user search, newest first, a page at a time.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`update users set roles = '[]'::jsonb where jsonb_typeof(roles) <> 'array'`);
  await knex.raw(`update users set roles = coalesce((
      select jsonb_agg(distinct r) from jsonb_array_elements_text(users.roles) r where r in ('admin', 'helpdesk', 'auditor')
    ), '[]'::jsonb)
    where roles <> '[]'::jsonb`);
  await knex.raw(`alter table users add constraint users_roles_known check (jsonb_typeof(roles) = 'array' and roles <@ '["admin", "helpdesk", "auditor"]'::jsonb)`);
  await knex.raw('create index users_created_id on users (created_at desc, id desc)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists users_created_id');
  await knex.raw('alter table users drop constraint if exists users_roles_known');
}
