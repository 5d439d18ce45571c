import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('email').notNullable();
    t.text('email_normalized').notNullable().unique();
    t.timestamp('email_verified_at', { useTz: true });
    t.text('name');
    t.text('given_name');
    t.text('family_name');
    t.text('locale');
    t.text('phone_number');
    t.timestamp('phone_verified_at', { useTz: true });
    t.jsonb('address');
    t.text('password_hash');
    t.text('status').notNullable().defaultTo('active');
    t.text('verification_preference').notNullable().defaultTo('risky');
    t.jsonb('roles').notNullable().defaultTo('[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('clients', (t) => {
    t.text('client_id').primary();
    t.text('name').notNullable();
    t.jsonb('metadata').notNullable();
    t.text('secret_sealed');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('signing_keys', (t) => {
    t.text('kid').primary();
    t.text('alg').notNullable();
    t.text('state').notNullable(); // active | retired
    t.jsonb('public_jwk').notNullable();
    t.text('private_sealed').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('retired_at', { useTz: true });
    t.timestamp('expires_at', { useTz: true }); // a retired key leaves the JWKS after this
    t.index(['state', 'alg']);
  });
  await knex.raw(`create unique index signing_keys_one_active_per_alg on signing_keys (alg) where state = 'active'`);

  await knex.schema.createTable('oidc_payloads', (t) => {
    t.text('kind').notNullable();
    t.text('id').notNullable();
    t.jsonb('payload').notNullable();
    t.text('grant_id');
    t.text('user_code');
    t.text('uid');
    t.text('account_id');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('consumed_at', { useTz: true });
    t.primary(['kind', 'id']);
    t.index(['expires_at']);
  });
  await knex.raw('create index oidc_payloads_grant_id on oidc_payloads (grant_id) where grant_id is not null');
  await knex.raw('create index oidc_payloads_user_code on oidc_payloads (user_code) where user_code is not null');
  await knex.raw('create index oidc_payloads_uid on oidc_payloads (uid) where uid is not null');
  await knex.raw('create index oidc_payloads_account on oidc_payloads (account_id, kind) where account_id is not null');

  // What oidc-provider's Session does not keep: where and from what browser a session signed in, last seen.
  await knex.schema.createTable('session_activity', (t) => {
    t.text('session_uid').primary();
    t.text('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('ip');
    t.text('user_agent');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_seen_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id']);
  });

  await knex.schema.createTable('one_time_codes', (t) => {
    t.text('id').primary();
    t.text('purpose').notNullable();
    t.text('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.text('code_hash').notNullable();
    t.jsonb('data');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['purpose', 'user_id']);
    t.index(['code_hash']);
  });

  await knex.schema.createTable('security_events', (t) => {
    t.bigIncrements('id').primary();
    t.text('user_id').references('id').inTable('users').onDelete('CASCADE');
    t.text('type').notNullable();
    t.text('ip');
    t.text('user_agent');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id', 'created_at']);
    t.index(['created_at']);
  });

  await knex.schema.createTable('counters', (t) => {
    t.text('key').primary();
    t.integer('count').notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['session_activity', 'counters', 'security_events', 'one_time_codes', 'oidc_payloads', 'signing_keys', 'clients', 'users']) {
    await knex.schema.dropTableIfExists(table);
  }
}
