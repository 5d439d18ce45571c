import type { Knex } from 'knex';

/**
 * The audit log (src/audit/chain.ts describes its hash chain), and a security trail that outlives its user.
 *
 * - `audit_log`: append-only; one row per administrative action, linked to the row before it by hash. `seq`
 *   is assigned under the chain's lock, so it has no gaps: a missing number is a deleted row. No foreign key
 *   anywhere: deleting a user or a client never takes a row with it.
 * - `audit_chain`: one row, the chain's head (the last seq and hash, locked FOR UPDATE by every append, so
 *   appends from several instances take turns) and its anchor (the last row the retention purge removed:
 *   verification starts there).
 * - Triggers refuse UPDATE and TRUNCATE on `audit_log`, and DELETE outside the retention purge (which sets
 *   `latchkey.audit_purge` for its own transaction); `audit_chain` never goes backwards and is never
 *   deleted. They run the same on PostgreSQL and the embedded database. They stop mistakes, not the
 *   database's owner: the hash chain is what shows a change made around them.
 * - `security_events.user_id` loses its foreign key (and its ON DELETE CASCADE): a deleted user's events stay,
 *   with their id.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_log', (t) => {
    t.bigInteger('seq').primary();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('actor_type').notNullable(); // user | client | cli
    t.text('actor_id');
    t.text('actor_acr');
    t.text('ip');
    t.text('user_agent');
    t.text('request_id');
    t.text('action').notNullable();
    t.text('target_type');
    t.text('target_id');
    t.text('result').notNullable(); // ok | denied | error
    t.text('reason');
    t.jsonb('before');
    t.jsonb('after');
    t.text('prev_hash').notNullable();
    t.text('hash').notNullable();
    t.index(['created_at']);
    t.index(['action', 'seq']);
    t.index(['actor_type', 'actor_id', 'seq']);
    t.index(['target_type', 'target_id', 'seq']);
  });
  await knex.raw(`alter table audit_log add constraint audit_log_result check (result in ('ok', 'denied', 'error'))`);
  await knex.raw(`alter table audit_log add constraint audit_log_actor_type check (actor_type in ('user', 'client', 'cli'))`);

  await knex.schema.createTable('audit_chain', (t) => {
    t.smallint('id').primary();
    t.bigInteger('head_seq').notNullable();
    t.text('head_hash').notNullable();
    t.bigInteger('anchor_seq').notNullable();
    t.text('anchor_hash').notNullable();
    t.timestamp('anchored_at', { useTz: true });
  });
  await knex.raw(`alter table audit_chain add constraint audit_chain_one_row check (id = 1)`);
  const genesis = '0'.repeat(64);
  await knex('audit_chain').insert({ id: 1, head_seq: 0, head_hash: genesis, anchor_seq: 0, anchor_hash: genesis });

  await knex.raw(`
    create function audit_log_append_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and current_setting('latchkey.audit_purge', true) = 'on' then
        return old;
      end if;
      raise exception 'audit_log is append-only (% refused)', tg_op using errcode = '55000';
    end $$`);
  await knex.raw(`create trigger audit_log_append_only before update or delete on audit_log for each row execute function audit_log_append_only()`);
  await knex.raw(`create trigger audit_log_no_truncate before truncate on audit_log for each statement execute function audit_log_append_only()`);
  await knex.raw(`
    create function audit_chain_forward_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' or new.head_seq < old.head_seq or new.anchor_seq < old.anchor_seq or new.anchor_seq > new.head_seq then
        raise exception 'audit_chain only moves forward' using errcode = '55000';
      end if;
      return new;
    end $$`);
  await knex.raw(`create trigger audit_chain_forward_only before update or delete on audit_chain for each row execute function audit_chain_forward_only()`);

  // The name knex gave the foreign key in 001_initial; `if exists` so a hand-made schema does not stop here.
  await knex.raw('alter table security_events drop constraint if exists security_events_user_id_foreign');
}

export async function down(knex: Knex): Promise<void> {
  // Events of users deleted since would break the restored foreign key: it checks new rows only.
  await knex.raw(`alter table security_events add constraint security_events_user_id_foreign
    foreign key (user_id) references users (id) on delete cascade not valid`);
  await knex.schema.dropTableIfExists('audit_chain');
  await knex.schema.dropTableIfExists('audit_log');
  await knex.raw('drop function if exists audit_chain_forward_only()');
  await knex.raw('drop function if exists audit_log_append_only()');
}
