import type { Knex } from 'knex';

/**
 * Clients as administrators edit them: a rotated-out secret that still works until its grace period ends
 * (sealed like the current one, under the same purpose, so the rotation moves it without opening it), and
 * a client disabled without being deleted (oidc-provider no longer finds it: invalid_client everywhere).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('clients', (t) => {
    t.text('previous_secret_sealed');
    t.timestamp('previous_secret_expires_at', { useTz: true });
    t.timestamp('disabled_at', { useTz: true });
  });
  await knex.raw(`alter table clients add constraint clients_previous_secret_expires check ((previous_secret_sealed is null) = (previous_secret_expires_at is null))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table clients drop constraint if exists clients_previous_secret_expires');
  await knex.schema.alterTable('clients', (t) => {
    t.dropColumn('previous_secret_sealed');
    t.dropColumn('previous_secret_expires_at');
    t.dropColumn('disabled_at');
  });
}
