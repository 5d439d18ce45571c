import type { Knex } from 'knex';

/**
 * An answer that arrives on another channel (an approval on the user's phone): a pending step is waiting
 * until one conditional write resolves it as approved or denied; the sign-in page asks for its status.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('pending_steps', (t) => {
    t.text('status').notNullable().defaultTo('waiting');
    t.timestamp('resolved_at', { useTz: true });
  });
  await knex.raw(`alter table pending_steps add constraint pending_steps_status check (status in ('waiting', 'approved', 'denied'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table pending_steps drop constraint if exists pending_steps_status');
  await knex.schema.alterTable('pending_steps', (t) => {
    t.dropColumn('resolved_at');
    t.dropColumn('status');
  });
}
