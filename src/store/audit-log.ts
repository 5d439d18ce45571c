/**
 * The audit log's tables (migration 010; the chain is described in src/audit/chain.ts). Appends take the
 * chain's one head row FOR UPDATE, so appends from every instance on a database take turns: each gets the
 * next `seq` and links to the hash before it, and no two rows share a previous hash. Nothing here updates
 * a row; the only delete is the retention purge, which moves the chain's anchor in the same transaction.
 */
import type { Knex } from 'knex';
import { rowHash, type AuditActorType, type AuditEntry, type AuditResult, type AuditRow, type JsonValue } from '../audit/chain.ts';
import { storableText } from '../audit/redact.ts';
import { deleted, type Db } from './db.ts';
import { securityEventsRepository, type SecurityEvent } from './security-events.ts';

export interface AuditFilter {
  /** From this time on (inclusive). */
  since?: Date | undefined;
  /** Before this time (exclusive). */
  until?: Date | undefined;
  /** Any of these actions. */
  actions?: readonly string[] | undefined;
  actor?: { type?: AuditActorType | undefined; id?: string | undefined } | undefined;
  target?: { type?: string | undefined; id?: string | undefined } | undefined;
  result?: AuditResult | undefined;
}

/** A page of rows by keyset: after (ascending) or before (descending) a seq. */
export interface AuditPage {
  order: 'asc' | 'desc';
  /** Rows with a seq beyond this one in the page's order (the last seq of the previous page). */
  cursor?: number | undefined;
  limit: number;
}

export interface ChainState {
  headSeq: number;
  headHash: string;
  /** The last row the retention purge removed (0 and the genesis hash before any purge): verification starts here. */
  anchorSeq: number;
  anchorHash: string;
  anchoredAt: Date | null;
}

const MAX_PAGE = 1000;

type Row = Record<string, unknown>;

function fromRow(r: Row): AuditRow {
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  return {
    seq: Number(r.seq), time: new Date(r.created_at as Date),
    actorType: r.actor_type as AuditActorType, actorId: text(r.actor_id), actorAcr: text(r.actor_acr),
    ip: text(r.ip), userAgent: text(r.user_agent), requestId: text(r.request_id),
    action: String(r.action), targetType: text(r.target_type), targetId: text(r.target_id),
    result: r.result as AuditResult, reason: text(r.reason),
    before: (r.before ?? null) as JsonValue | null, after: (r.after ?? null) as JsonValue | null,
    prevHash: String(r.prev_hash), hash: String(r.hash),
  };
}

function chainFromRow(r: Row): ChainState {
  return {
    headSeq: Number(r.head_seq), headHash: String(r.head_hash), anchorSeq: Number(r.anchor_seq),
    anchorHash: String(r.anchor_hash), anchoredAt: (r.anchored_at as Date | null) ?? null,
  };
}

/** The entry as it is stored (and hashed): text the database keeps, bounded. */
function storable(e: AuditEntry): AuditEntry {
  const text = (v: string | null, max = 200) => (v === null ? null : storableText(v, max));
  return {
    actorType: e.actorType, actorId: text(e.actorId), actorAcr: text(e.actorAcr), ip: text(e.ip, 64),
    userAgent: text(e.userAgent, 512), requestId: text(e.requestId), action: storableText(e.action, 100),
    targetType: text(e.targetType, 100), targetId: text(e.targetId), result: e.result, reason: text(e.reason, 1000),
    // JSON round trip: what jsonb gives back is what was hashed.
    before: e.before === null ? null : (JSON.parse(JSON.stringify(e.before)) as JsonValue),
    after: e.after === null ? null : (JSON.parse(JSON.stringify(e.after)) as JsonValue),
  };
}

function applyFilter(query: Knex.QueryBuilder, f: AuditFilter): Knex.QueryBuilder {
  if (f.since) query.where('created_at', '>=', f.since);
  if (f.until) query.where('created_at', '<', f.until);
  if (f.actions?.length) query.whereIn('action', [...f.actions]);
  if (f.actor?.type) query.where('actor_type', f.actor.type);
  if (f.actor?.id !== undefined) query.where('actor_id', f.actor.id);
  if (f.target?.type) query.where('target_type', f.target.type);
  if (f.target?.id !== undefined) query.where('target_id', f.target.id);
  if (f.result) query.where('result', f.result);
  return query;
}

async function lockChain(trx: Knex.Transaction): Promise<ChainState> {
  const row = await trx('audit_chain').where({ id: 1 }).forUpdate().first();
  if (!row) throw new Error('the audit chain has no head row (migration 010)');
  return chainFromRow(row);
}

/** `now`: the clock of appends (the database's rows are timed by the process that appends them). */
export function auditLogRepository(db: Db, now: () => Date = () => new Date()) {
  /** One page of the rows that match, by keyset on seq: pass the last seq of a page as the next one's cursor. */
  async function page(filter: AuditFilter, at: AuditPage): Promise<AuditRow[]> {
    const query = applyFilter(db('audit_log'), filter);
    if (at.cursor !== undefined) query.where('seq', at.order === 'asc' ? '>' : '<', at.cursor);
    const rows = await query.orderBy('seq', at.order).limit(Math.max(1, Math.min(at.limit, MAX_PAGE)));
    return rows.map(fromRow);
  }

  return {
    /**
     * Appends an entry as the chain's next row, with `mirror` (the action as the security event of the user
     * it was about) in the same transaction. The time is taken under the lock.
     */
    async append(entry: AuditEntry, mirror?: SecurityEvent): Promise<AuditRow> {
      const clean = storable(entry);
      return db.transaction(async (trx) => {
        const head = await lockChain(trx);
        const unhashed = { ...clean, seq: head.headSeq + 1, time: new Date(now().getTime()), prevHash: head.headHash };
        const row: AuditRow = { ...unhashed, hash: rowHash(unhashed) };
        await trx('audit_log').insert({
          seq: row.seq, created_at: row.time, actor_type: row.actorType, actor_id: row.actorId, actor_acr: row.actorAcr,
          ip: row.ip, user_agent: row.userAgent, request_id: row.requestId, action: row.action,
          target_type: row.targetType, target_id: row.targetId, result: row.result, reason: row.reason,
          before: row.before === null ? null : JSON.stringify(row.before), after: row.after === null ? null : JSON.stringify(row.after),
          prev_hash: row.prevHash, hash: row.hash,
        });
        await trx('audit_chain').where({ id: 1 }).update({ head_seq: row.seq, head_hash: row.hash });
        if (mirror) await securityEventsRepository(trx).insert(mirror);
        return row;
      });
    },

    async chain(): Promise<ChainState> {
      const row = await db('audit_chain').where({ id: 1 }).first();
      if (!row) throw new Error('the audit chain has no head row (migration 010)');
      return chainFromRow(row);
    },

    page,

    /** Every matching row, oldest first, read a page at a time (for an export of any size). */
    async *scan(filter: AuditFilter, pageSize = 500): AsyncGenerator<AuditRow> {
      let cursor: number | undefined;
      for (;;) {
        const rows = await page(filter, { order: 'asc', cursor, limit: pageSize });
        yield* rows;
        if (rows.length < pageSize) return;
        cursor = rows.at(-1)!.seq;
      }
    },

    /** Rows after `afterSeq` up to `throughSeq`, in seq order, at most `limit` (verification walks with it). */
    async range(afterSeq: number, throughSeq: number, limit: number): Promise<AuditRow[]> {
      const rows = await db('audit_log').where('seq', '>', afterSeq).andWhere('seq', '<=', throughSeq).orderBy('seq').limit(limit);
      return rows.map(fromRow);
    },

    /**
     * Removes the rows older than `retentionDays` from the start of the chain and anchors the chain on the
     * last one removed, in the same transaction, so the rows left still verify. It removes only a prefix that
     * verifies: a broken link is never purged away (verification keeps reporting it). The number removed.
     */
    async purge(retentionDays: number, batch = 5000, maxBatches = 20): Promise<number> {
      let total = 0;
      for (let i = 0; i < maxBatches; i++) {
        const removed = await db.transaction(async (trx) => {
          const chain = await lockChain(trx);
          const rows = await trx('audit_log').where('seq', '>', chain.anchorSeq).orderBy('seq').limit(batch)
            .select('*', trx.raw('created_at < now() - make_interval(days => ?) as expired', [retentionDays]));
          let last = { seq: chain.anchorSeq, hash: chain.anchorHash };
          for (const r of rows) {
            const row = fromRow(r);
            if (!r.expired || row.seq !== last.seq + 1 || row.prevHash !== last.hash || rowHash(row) !== row.hash) break;
            last = { seq: row.seq, hash: row.hash };
          }
          if (last.seq === chain.anchorSeq) return 0;
          await trx.raw(`select set_config('latchkey.audit_purge', 'on', true)`);
          const n = await deleted(trx('audit_log').where('seq', '<=', last.seq).delete());
          // The anchor moves only over rows that are gone (all of them, and no more).
          if (n !== last.seq - chain.anchorSeq) throw new Error(`the audit purge removed ${n} rows instead of ${last.seq - chain.anchorSeq}`);
          await trx('audit_chain').where({ id: 1 }).update({ anchor_seq: last.seq, anchor_hash: last.hash, anchored_at: trx.fn.now() });
          return n;
        });
        total += removed;
        if (removed < batch) break;
      }
      return total;
    },
  };
}

export type AuditLogRepository = ReturnType<typeof auditLogRepository>;
