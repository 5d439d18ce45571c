import type { Knex } from 'knex';

/**
 * Mobile app prompts (docs/mobile-app-protocol.md).
 *
 * - `push_devices`: a phone paired with an account. Its public key (a P-256 JWK) and key id (RFC 7638
 *   thumbprint, unique: a key belongs to one device) authenticate its requests; its push subscription is
 *   sealed at rest (the endpoint is a capability URL and the keys decrypt its messages). A device counts as
 *   a method only once its enrolment finished: `authenticator_id` is set then, and removing the method
 *   removes the device with it. `pairing_id` ties it to the account page's enrolment that issued its code.
 * - `device_nonces`: every nonce a device key signed with, kept past the time window, so a replayed request
 *   fails on every instance (one conditional insert).
 * - `vapid_keys`: the server's VAPID key pairs (RFC 8292), the private key sealed; one is current, the
 *   others retired (kept to recognise what a device subscribed with).
 * - `pending_steps.resolved_by`: which device approved or denied a prompt.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('push_devices', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('authenticator_id').unique().references('id').inTable('authenticators').onDelete('CASCADE');
    t.text('pairing_id').notNullable().unique();
    t.text('key_id').notNullable().unique();
    t.jsonb('public_key').notNullable();
    t.text('name').notNullable();
    t.text('subscription_sealed');
    t.text('vapid_key_id');
    t.text('state').notNullable();
    t.timestamp('confirmed_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id']);
  });
  await knex.raw(`alter table push_devices add constraint push_devices_state check (state in ('pairing', 'active', 'open-app', 'signed-out'))`);
  await knex.schema.createTable('device_nonces', (t) => {
    t.text('key_id').notNullable();
    t.text('nonce').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['key_id', 'nonce']);
    t.index(['expires_at']);
  });
  await knex.schema.createTable('vapid_keys', (t) => {
    t.text('id').primary();
    t.text('public_key').notNullable();
    t.text('private_sealed').notNullable();
    t.boolean('current').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  // At most one current key, whatever starts at once.
  await knex.raw('create unique index vapid_keys_one_current on vapid_keys (current) where current');
  await knex.schema.alterTable('pending_steps', (t) => {
    t.text('resolved_by');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('pending_steps', (t) => t.dropColumn('resolved_by'));
  await knex.schema.dropTable('vapid_keys');
  await knex.schema.dropTable('device_nonces');
  await knex.schema.dropTable('push_devices');
}
