import type { Knex } from 'knex';

/**
 * `console_sessions`: the admin console's own sessions (src/store/console-sessions.ts), like
 * `account_sessions`: the hash of a random id kept in the console's cookie, bound to the oidc-provider
 * session it was signed in from. `last_seen_at` measures the idle limit, `created_at` the absolute one;
 * `expires_at` (the absolute limit at sign-in) lets the clean-up find the dead ones without the
 * configuration.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_sessions', (t) => {
    t.text('id_hash').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('oidc_session_uid').notNullable();
    t.text('acr').notNullable();
    t.jsonb('amr').notNullable().defaultTo('[]');
    t.timestamp('auth_time', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['user_id']);
    t.index(['oidc_session_uid']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('console_sessions');
}
