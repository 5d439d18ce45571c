import type { Knex } from 'knex';

/**
 * "Keep me signed in" on the sign-in page: a sign-in in progress remembers the choice until it is granted,
 * which sets a long session cookie, or one that ends with the browser. Rows already in flight keep the long
 * cookie every sign-in had before.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sign_in_progress', (t) => {
    t.boolean('keep_signed_in').notNullable().defaultTo(true);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sign_in_progress', (t) => {
    t.dropColumn('keep_signed_in');
  });
}
