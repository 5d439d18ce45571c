import type { Knex } from 'knex';

/**
 * Two-step verification: enrolled authenticators, the steps waiting for an answer, what a sign-in has
 * proved so far, the devices and networks a user has signed in from.
 */
export async function up(knex: Knex): Promise<void> {
  // One row per enrolled method: a security question, an authenticator app, a phone, a set of recovery codes.
  await knex.schema.createTable('authenticators', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('label').notNullable();
    /** Kind-specific, never secret: the question, the phone number, the digits of a TOTP app. */
    t.jsonb('data').notNullable().defaultTo('{}');
    /** A secret needed in the clear later (a TOTP seed), sealed with AES-256-GCM. */
    t.text('secret_sealed');
    /** A hash (a security answer), never the value. */
    t.text('secret_hash');
    /** A public key (WebAuthn). */
    t.text('public_key');
    /** A globally unique id (a WebAuthn credential id). */
    t.text('external_id').unique();
    /** TOTP: the last time step accepted; every step up to it is spent. */
    t.bigInteger('last_step');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.index(['user_id', 'kind']);
  });

  // A challenge sent and waiting for its answer (an SMS code, an enrolment in progress). Taken out (deleted)
  // before it is checked, so one answer is checked against it at most once.
  await knex.schema.createTable('pending_steps', (t) => {
    t.text('id').primary();
    /** What it belongs to: "interaction:<uid>" or "account:<account session hash>". */
    t.text('binding').notNullable();
    /** Null only for a passkey sign-in's challenge, made before anyone says who they are. */
    t.text('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('authenticator_id');
    t.jsonb('data').notNullable().defaultTo('{}');
    t.text('secret_sealed');
    t.integer('attempts_left').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['binding']);
    t.index(['expires_at']);
  });

  // What a sign-in in progress (an oidc-provider interaction) has proved: the password, then a second step.
  // Nothing here grants anything; only interaction/finish.ts does, once the proofs meet the requirement.
  await knex.schema.createTable('sign_in_progress', (t) => {
    t.text('interaction_uid').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.jsonb('proofs').notNullable();
    /** Why the risk rules asked for a second step (shown to the user, recorded in the activity log). */
    t.jsonb('reasons').notNullable().defaultTo('[]');
    t.jsonb('requirement').notNullable();
    /** The browser said it has a platform authenticator (so a passkey may be offered at the end). */
    t.boolean('passkey_capable').notNullable().defaultTo(false);
    /** Every proof needed is there; only the passkey offer is still on screen. */
    t.boolean('complete').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });

  // Browsers a user completed a sign-in on (the device cookie's id, hashed).
  await knex.schema.createTable('devices', (t) => {
    t.text('id').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('device_hash').notNullable();
    t.text('user_agent');
    t.text('ip');
    t.timestamp('first_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    /** "Don't ask again" for the passkey offer after a password sign-in on this device. */
    t.timestamp('passkey_offer_declined_at', { useTz: true });
    t.unique(['user_id', 'device_hash']);
  });

  // Networks (IPv4 /24, IPv6 /48) a user completed a sign-in from, with the GeoIP answer when configured.
  await knex.schema.createTable('user_networks', (t) => {
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('prefix').notNullable();
    t.text('country');
    t.double('latitude');
    t.double('longitude');
    t.timestamp('first_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'prefix']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['user_networks', 'devices', 'sign_in_progress', 'pending_steps', 'authenticators']) {
    await knex.schema.dropTableIfExists(table);
  }
}
