/**
 * The audit log as text, a row at a time: CSV (RFC 4180) or NDJSON. Both carry every field of a row with
 * `prev_hash` and `hash`, so an export of the whole log can be checked against chain.ts by another tool.
 *
 * CSV: a header line, then one line per row, CRLF line ends; a field with a comma, a quote, CR or LF is
 * quoted (quotes doubled). A field that starts with `=`, `+`, `-`, `@`, a tab or CR is prefixed with `'`, so
 * a spreadsheet shows it as text instead of running it as a formula (CSV injection). `before` and `after`
 * are canonical JSON text. NDJSON: one JSON object per line (LF), `before` and `after` as JSON values.
 */
import { canonicalJson, type AuditRow } from './chain.ts';

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const COLUMNS = [
  'seq', 'time', 'actor_type', 'actor_id', 'actor_acr', 'ip', 'user_agent', 'request_id', 'action',
  'target_type', 'target_id', 'result', 'reason', 'before', 'after', 'prev_hash', 'hash',
] as const;

function record(row: AuditRow) {
  return {
    seq: row.seq, time: row.time.toISOString(), actor_type: row.actorType, actor_id: row.actorId, actor_acr: row.actorAcr,
    ip: row.ip, user_agent: row.userAgent, request_id: row.requestId, action: row.action,
    target_type: row.targetType, target_id: row.targetId, result: row.result, reason: row.reason,
    before: row.before, after: row.after, prev_hash: row.prevHash, hash: row.hash,
  } satisfies Record<(typeof COLUMNS)[number], unknown>;
}

/** One CSV field: guarded against formulas (some spreadsheets skip leading spaces first), quoted when it must be. */
export function csvField(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  if (/^([\t\r]|\s*[=+\-@])/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csvHeader(): string {
  return `${COLUMNS.join(',')}\r\n`;
}

export function csvLine(row: AuditRow): string {
  const r = record(row);
  return `${COLUMNS.map((c) => {
    const v = r[c];
    return csvField(c === 'before' || c === 'after' ? (v === null ? null : canonicalJson(v as never)) : (v as string | number | null));
  }).join(',')}\r\n`;
}

export function ndjsonLine(row: AuditRow): string {
  return `${JSON.stringify(record(row))}\n`;
}

/** The export's text, a piece at a time: the header (CSV), then a line per row. */
export async function* exportText(rows: AsyncIterable<AuditRow>, format: ExportFormat): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  for await (const row of rows) yield format === 'csv' ? csvLine(row) : ndjsonLine(row);
}
