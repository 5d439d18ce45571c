import type { Knex } from 'knex';

/**
 * Whether the browser of a sign-in has a platform authenticator (face, fingerprint) is known only when the
 * sign-in page's script said so: null now means "not known" (no script ran), so a passkey is never ruled
 * out on a guess, and never opened on a device that said it cannot use one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table sign_in_progress alter column passkey_capable drop not null, alter column passkey_capable drop default');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('update sign_in_progress set passkey_capable = false where passkey_capable is null');
  await knex.raw('alter table sign_in_progress alter column passkey_capable set default false, alter column passkey_capable set not null');
}
