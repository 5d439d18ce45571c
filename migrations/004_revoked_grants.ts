import type { Knex } from 'knex';

/**
 * Grants that were revoked (a code used twice, a refresh token replayed, a sign-out): a token of such a
 * grant is never stored or answered again, whatever order parallel requests on several instances take.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('revoked_grants', (t) => {
    t.text('grant_id').primary();
    /** As long as any token of the grant could have lived. */
    t.timestamp('expires_at', { useTz: true }).notNullable().index();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('revoked_grants');
}
