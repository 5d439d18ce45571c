import type { Knex } from 'knex';

/**
 * `users.recovery_pending_at`: set by a help-desk reset of a lost second factor, before anything is removed,
 * and cleared only when the mailed link's recovery made a new method. While it is set, no sign-in completes
 * (the password alone must never be enough, even when the reset left no second step to ask for), and the
 * account page, tokens and CIBA are out of reach.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.timestamp('recovery_pending_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => t.dropColumn('recovery_pending_at'));
}
