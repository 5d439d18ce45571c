/**
 * The audit log's hash chain: what a row is, and the hash that links it to the row before it.
 *
 * Every row carries `prev_hash` (the `hash` of the row before it; for the first row ever, 64 zeros) and
 * `hash`, computed as follows, so a tool of any language can check an export or the table:
 *
 *   hash = lowercase hex of SHA-256( UTF-8( canonical ) )
 *   canonical = the JSON text (RFC 8785, JSON Canonicalization Scheme: no whitespace, object keys sorted by
 *               UTF-16 code units, ECMAScript number and string serialisation) of this 17-element array:
 *     [ "latchkey.audit.v1", seq, time, actor_type, actor_id, actor_acr, ip, user_agent, request_id,
 *       action, target_type, target_id, result, reason, before, after, prev_hash ]
 *   where seq is an integer; time is the row's created_at in UTC as `YYYY-MM-DDTHH:mm:ss.sssZ` (milliseconds);
 *   the text fields are strings or null; before and after are JSON values (already redacted) or null.
 *
 * `seq` counts from 1 without gaps. Verification walks the rows in `seq` order from the anchor (the last
 * row the retention purge removed: `audit_chain.anchor_seq` / `anchor_hash`, 0 and 64 zeros before any
 * purge) and checks, row by row: the next number follows (else a row was deleted), `prev_hash` is the
 * previous row's hash (else rows were reordered or replaced), and `hash` is recomputed the same (else the
 * row was edited). The last row must be the chain's head (`audit_chain.head_seq` / `head_hash`).
 */
import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);
const VERSION = 'latchkey.audit.v1';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type AuditResult = 'ok' | 'denied' | 'error';
export type AuditActorType = 'user' | 'client' | 'cli';

/** What an action leaves in the log, before the chain numbers and links it. */
export interface AuditEntry {
  actorType: AuditActorType;
  /** The user's id (console) or the client's id (API); null for the CLI. */
  actorId: string | null;
  /** The level of the actor's sign-in (console); null when there is none. */
  actorAcr: string | null;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** `users.add`, `clients.remove`, `keys.rotate`, … */
  action: string;
  targetType: string | null;
  targetId: string | null;
  result: AuditResult;
  /** Why it was denied or failed (a code and its message); null when it went through. */
  reason: string | null;
  /** Redacted (src/audit/redact.ts) before they get here. */
  before: JsonValue | null;
  after: JsonValue | null;
}

/** A row of the log: the entry, numbered, timed and linked. */
export interface AuditRow extends AuditEntry {
  seq: number;
  time: Date;
  prevHash: string;
  hash: string;
}

/** RFC 8785 for the JSON values the log holds: JSON.stringify already serialises strings and numbers so. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
}

/** The canonical serialisation of a row (without its own hash): what the hash is taken over. */
export function canonicalRow(row: Omit<AuditRow, 'hash'>): string {
  return canonicalJson([
    VERSION, row.seq, row.time.toISOString(), row.actorType, row.actorId, row.actorAcr, row.ip, row.userAgent,
    row.requestId, row.action, row.targetType, row.targetId, row.result, row.reason, row.before, row.after, row.prevHash,
  ]);
}

export function rowHash(row: Omit<AuditRow, 'hash'>): string {
  return createHash('sha256').update(canonicalRow(row), 'utf8').digest('hex');
}
