import type { Knex } from 'knex';

/**
 * The hosted account page's own sessions. The account page is a client of the provider: after its
 * authorization code is redeemed it keeps this small session, bound to the oidc-provider session it came
 * from (a row is live only while that Session row is). The cookie holds a random id; only its hash is here.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('account_sessions', (t) => {
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
  await knex.schema.dropTableIfExists('account_sessions');
}
