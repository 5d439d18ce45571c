import type { Knex } from 'knex';

/**
 * The language Latchkey speaks to a user in mails (notifications, reset, verification): the language of their
 * sign-up, then of their last sign-in or choice on the language picker. Null for the accounts made before it
 * (and by the CLI): their mails follow the request that sends them, else English.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.string('language', 35).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('language');
  });
}
