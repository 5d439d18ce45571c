import type { Knex } from 'knex';

/**
 * `signing_keys.activates_at`: a rotated-in key is first published as `next` (in every instance's JWKS,
 * signing nothing) and becomes the active key only from this time, once every instance has had the
 * chance to publish it (src/store/signing-keys.ts `promoteDue`). Before, a rotation made the new key
 * the signer at once, and an instance that had not yet reloaded its keys published a JWKS without the
 * key that another instance's tokens were signed with.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('signing_keys', (t) => {
    t.timestamp('activates_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('signing_keys', (t) => {
    t.dropColumn('activates_at');
  });
}
