/**
 * The audit log, as administrators read and check it: a list a page at a time (newest first, by keyset),
 * an export (filtered, streamed a chunk at a time) and the verification of its hash chain. Each leaves its
 * own row, like every operation.
 */
import type { AuditActorType, AuditResult, AuditRow } from '../../audit/chain.ts';
import { EXPORT_FORMATS, exportText, type ExportFormat } from '../../audit/export.ts';
import { verifyChain, type ChainReport } from '../../audit/verify.ts';
import type { Services } from '../../services.ts';
import type { AuditFilter } from '../../store/audit-log.ts';
import { OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';

export interface AuditQueryInput {
  format?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  actions?: readonly string[] | undefined;
  /** `cli`, `user:ID`, `client:ID`, or an ID of either. */
  actor?: string | undefined;
  /** `TYPE:ID` (`user:ID`, `client:ID`, …) or an ID. */
  target?: string | undefined;
  result?: string | undefined;
}

export interface AuditQuery {
  format: ExportFormat;
  filter: AuditFilter;
}

const RESULTS: readonly AuditResult[] = ['ok', 'denied', 'error'];
const ACTOR_TYPES: readonly AuditActorType[] = ['user', 'client', 'cli'];
/** A date (UTC) or a time with its zone: never a local time that reads differently on another machine. */
const TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const CHUNK = 64 * 1024;

function time(value: string | undefined, field: string): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = TIME.test(value) ? Date.parse(value) : NaN;
  // Year 0000 parses, but no database stores it: a time before year 1 is no time at all here.
  const ms = Number.isNaN(parsed) || new Date(parsed).getUTCFullYear() < 1 ? NaN : parsed;
  if (Number.isNaN(ms)) throw new OperationError('audit.time_invalid', `"${value}" is not a date (2025-01-31, UTC) or a time with its zone (2025-01-31T12:00:00Z)`, 400, field);
  return new Date(ms);
}

/** Reads an export's format and filters (from the CLI's options or an API's query), naming the one that is wrong. */
export function auditQuery(input: AuditQueryInput): AuditQuery {
  const format = input.format ?? 'ndjson';
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) throw new OperationError('audit.format_unknown', `format must be one of ${EXPORT_FORMATS.join(', ')}`, 400, 'format');
  if (input.result !== undefined && !(RESULTS as readonly string[]).includes(input.result)) {
    throw new OperationError('audit.result_unknown', `result must be one of ${RESULTS.join(', ')}`, 400, 'result');
  }
  const filter: AuditFilter = { since: time(input.since, 'since'), until: time(input.until, 'until'), result: input.result as AuditResult | undefined };
  if (input.actions?.length) filter.actions = [...input.actions];
  if (input.actor !== undefined) {
    const [type, id] = split(input.actor);
    if (input.actor === 'cli') filter.actor = { type: 'cli' };
    else if (type && (ACTOR_TYPES as readonly string[]).includes(type)) filter.actor = { type: type as AuditActorType, id };
    else if (type) throw new OperationError('audit.actor_invalid', `an actor is cli, user:ID, client:ID or an ID`, 400, 'actor');
    else filter.actor = { id };
  }
  if (input.target !== undefined) {
    const [type, id] = split(input.target);
    filter.target = type ? { type, id: id || undefined } : { id };
  }
  return { format: format as ExportFormat, filter };
}

/** `user:abc` -> ['user', 'abc']; `abc` -> [undefined, 'abc']. */
function split(value: string): [string | undefined, string] {
  const m = /^([a-z_]+):(.*)$/.exec(value);
  return m ? [m[1]!, m[2]!] : [undefined, value];
}

export interface AuditListInput extends Omit<AuditQueryInput, 'format'> {
  /** Rows per page, 1 to 100 (50 when absent); a number, or its digits as a query string has them. */
  limit?: number | string | undefined;
  /** The `nextCursor` of the page before; absent for the newest rows. */
  cursor?: string | undefined;
}

export interface AuditList {
  /** Newest first. */
  items: AuditRow[];
  /** Opaque; pass it back for the older rows. Null on the last page. */
  nextCursor: string | null;
}

const LIST_LIMIT = { min: 1, max: 100, default: 50 } as const;
const CURSOR = /^s([1-9]\d{0,15})$/;

function listLimit(value: number | string | undefined): number {
  if (value === undefined || value === '') return LIST_LIMIT.default;
  const n = typeof value === 'number' ? value : /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < LIST_LIMIT.min || n > LIST_LIMIT.max) {
    throw new OperationError('audit.limit_invalid', `limit must be a whole number from ${LIST_LIMIT.min} to ${LIST_LIMIT.max}`, 400, 'limit');
  }
  return n;
}

/** A cursor names the last row of a page (its seq) in a form callers do not build themselves. */
function encodeCursor(seq: number): string {
  return Buffer.from(`s${seq}`).toString('base64url');
}

function decodeCursor(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const m = /^[A-Za-z0-9_-]{1,32}$/.test(value) ? CURSOR.exec(Buffer.from(value, 'base64url').toString('latin1')) : null;
  if (!m) throw new OperationError('audit.cursor_invalid', 'cursor is not one this list gave out', 400, 'cursor');
  return Number(m[1]);
}

/**
 * One page of the rows that match, newest first. The keyset is the row's seq: a page holds the rows below
 * the cursor's, so rows appended meanwhile never shift the older pages (they come first on a new list).
 */
export async function listAudit(services: Services, actor: Actor, input: AuditListInput): Promise<AuditList> {
  const done = await audited(services, actor, {
    action: 'audit.list',
    target: { type: 'audit_log' },
    outcome: ({ filter, list }) => ({ after: { filter, cursor: input.cursor ?? null, rows: list.items.length } }),
  }, async () => {
    authorize(actor, 'audit.read');
    const { filter } = auditQuery({ ...input, format: undefined });
    const limit = listLimit(input.limit);
    const cursor = decodeCursor(input.cursor);
    const rows = await services.store.audit.page(filter, { order: 'desc', cursor, limit: limit + 1 });
    const items = rows.slice(0, limit);
    const list: AuditList = { items, nextCursor: rows.length > limit ? encodeCursor(items.at(-1)!.seq) : null };
    return { filter, list };
  });
  return done.list;
}

/**
 * Writes the rows that match, oldest first, in chunks through `write` (which may wait); the number of rows.
 * A query refused (a bad format or filter) is a denied export, in the log like any other refusal.
 */
export async function exportAudit(services: Services, actor: Actor, input: AuditQueryInput, write: (text: string) => Promise<void>): Promise<number> {
  const done = await audited(services, actor, {
    action: 'audit.export',
    target: { type: 'audit_log' },
    outcome: ({ query, rows }) => ({ after: { format: query.format, filter: query.filter, rows } }),
  }, async () => {
    authorize(actor, 'audit.read');
    const query = auditQuery(input);
    let rows = 0;
    let pending = '';
    for await (const text of exportText(countRows(services.store.audit.scan(query.filter), () => rows++), query.format)) {
      pending += text;
      if (pending.length >= CHUNK) {
        await write(pending);
        pending = '';
      }
    }
    if (pending) await write(pending);
    return { query, rows };
  });
  return done.rows;
}

async function* countRows<T>(rows: AsyncIterable<T>, count: () => void): AsyncGenerator<T> {
  for await (const row of rows) {
    count();
    yield row;
  }
}

/** Checks the chain from its anchor to its head (src/audit/verify.ts); the report, broken or not. */
export async function verifyAudit(services: Services, actor: Actor): Promise<ChainReport> {
  return audited(services, actor, { action: 'audit.verify', target: { type: 'audit_log' }, outcome: (report) => ({ after: report }) },
    () => {
      authorize(actor, 'audit.read');
      return verifyChain(services.store.audit);
    });
}
