import type { Knex } from 'knex';

/**
 * Remembered consent: what a user allowed an app (its OpenID scopes, claims and resource scopes), so the
 * consent page is asked again only for something new, after "Remove access", or when the app asks with
 * prompt=consent. It outlives sessions and sign-outs; it ends with the user or the client.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('consents', (t) => {
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('client_id').notNullable().references('client_id').inTable('clients').onDelete('CASCADE');
    t.specificType('scopes', 'text[]').notNullable();
    t.specificType('claims', 'text[]').notNullable();
    /** { resource indicator: [scope, …] } */
    t.jsonb('resources').notNullable();
    t.timestamp('granted_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'client_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('consents');
}
