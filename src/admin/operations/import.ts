/**
 * `latchkey import FILE`: loads a document of `latchkey export` (export.ts) into an empty database, in one
 * transaction: a refusal or any failure (a row the schema refuses, a document cut short) leaves the
 * database as it was. Refused, before anything is loaded:
 * - a database that already holds users, clients, signing keys or a VAPID key (import never merges: it
 *   would have to choose between two accounts with one email, or two active keys), or audit rows, unless
 *   the audit log is left out (`withoutAuditLog`: two hash chains cannot be joined);
 * - a document whose secrets were sealed under another `secrets.encryptionKey` (its keyCheck does not open
 *   here): its TOTP seeds, client secrets and private keys would be unreadable;
 * - a document from a schema this database lacks (a newer Latchkey): upgrade this one first.
 * Refused once its rows are loaded, before the commit (the transaction is rolled back):
 * - a document changed since its export, or cut short: its MAC (export.ts), keyed from
 *   secrets.encryptionKey, does not match its lines, so no row can be added (an administrator), edited or
 *   removed without the key;
 * - an audit log whose rows are not the chain the document's head and anchor describe (rows without a
 *   head, a head past the last row, a broken link): every later audited action would fail on it.
 * The import's own audit row is written in its transaction, so the rows and their record commit together;
 * a refusal's row is written once the transaction is rolled back, as every operation's (audited.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Knex } from 'knex';
import type { AuditRow } from '../../audit/chain.ts';
import { auditLogRepository } from '../../store/audit-log.ts';
import { verifyChain } from '../../audit/verify.ts';
import { ImportRefused, importRows, appliedMigrations, auditSpan, EXPORT_TABLE_NAMES, type ExportRow, type ExportTable } from '../../store/export.ts';
import { createSealer } from '../../store/seal.ts';
import type { Services } from '../../services.ts';
import { redact } from '../../audit/redact.ts';
import { auditActor, OperationError, type Actor } from './actor.ts';
import { audited, type Audit } from './audited.ts';
import { DocumentMac, EXPORT_FORMAT, EXPORT_VERSION, KEY_CHECK, type ExportHeader } from './export.ts';
import { authorize } from './permissions.ts';

export interface ImportResult {
  counts: Record<ExportTable, number>;
  exportedAt: string;
  /** The audit chain's head the document carried (seq 0 when it had no audit rows or they were left out). */
  auditHead: { seq: number; hash: string } | null;
}

const malformed = (message: string) => new OperationError('import.malformed', message);

/** `lines`: the document's lines, in order (a trailing empty line is fine). */
export async function importDatabase(
  services: Services, actor: Actor, lines: AsyncIterable<string>, options: { withoutAuditLog?: boolean | undefined } = {},
): Promise<ImportResult> {
  const withoutAuditLog = options.withoutAuditLog ?? false;
  const audit: Audit<ImportResult> = {
    action: 'database.import',
    target: { type: 'database' },
    outcome: (r) => ({ after: { counts: r.counts, exportedAt: r.exportedAt, sourceAuditHead: r.auditHead, auditLogCarried: !withoutAuditLog } }),
  };
  let written: AuditRow | undefined;
  const run = async (): Promise<ImportResult> => {
    authorize(actor, 'database.migrate');
    const db = services.database.knex;
    const it = numbered(lines)[Symbol.asyncIterator]();
    const first = await it.next();
    if (first.done) throw malformed('the file is empty: not a document of latchkey export');
    const header = parseHeader(first.value.text);
    checkKey(services, header);
    const mac = new DocumentMac(services.config.secrets.encryptionKey);
    mac.update(`${first.value.text}\n`);
    const applied = new Set(await appliedMigrations(db));
    const missing = header.migrations.filter((m) => !applied.has(m));
    if (missing.length) {
      throw new OperationError('import.newer_schema', `the document comes from a newer Latchkey (migrations ${missing.join(', ')} are not applied here): upgrade this installation first`, 409);
    }
    const seen = Object.fromEntries(EXPORT_TABLE_NAMES.map((t) => [t, 0])) as Record<ExportTable, number>;
    let auditHead: ImportResult['auditHead'] = null;
    const rows = async function* (): AsyncGenerator<{ table: ExportTable; row: ExportRow }> {
      for (let next = await it.next(); !next.done; next = await it.next()) {
        const { text, n } = next.value;
        const record = parseLine(text, n);
        if ('end' in record) {
          // Before the counts: a document with rows added or removed is refused as changed, not as miscounted.
          if (typeof record.mac !== 'string' || !macMatches(mac.digest(), record.mac)) throw altered();
          for (const t of EXPORT_TABLE_NAMES) {
            if ((record.counts[t] ?? 0) !== seen[t]) throw malformed(`line ${n}: the document says ${record.counts[t] ?? 0} ${t} row(s) but holds ${seen[t]}`);
          }
          if (!(await it.next()).done) throw malformed(`line ${n + 1}: lines after the document's end`);
          return;
        }
        mac.update(`${text}\n`);
        seen[record.table]++;
        if (record.table === 'audit_chain') auditHead = { seq: Number(record.row.head_seq), hash: String(record.row.head_hash) };
        yield record;
      }
      throw malformed('the document ends before its last line: it was cut short (export it again)');
    };
    let counts: Record<ExportTable, number>;
    try {
      counts = await importRows(db, rows(), {
        withoutAuditLog,
        checkEmpty: (o) => {
          const held = [
            o.users && `${o.users} user(s)`, o.clients && `${o.clients} client(s)`, o.signingKeys && `${o.signingKeys} signing key(s)`,
            o.vapidKeys && `${o.vapidKeys} VAPID key(s)`, !withoutAuditLog && o.auditRows && `${o.auditRows} audit log row(s)`,
          ].filter(Boolean);
          if (held.length === 0) return;
          const onlyAudit = !o.users && !o.clients && !o.signingKeys && !o.vapidKeys;
          throw new OperationError('import.not_empty', onlyAudit
            ? `this database's audit log already has ${o.auditRows} row(s) (an earlier import refused here?), and the document's hash chain cannot be joined to it: import into a new, empty database, or add --without-audit-log to leave the document's audit log out (keep the file: it is the record)`
            : `this database is not empty (it holds ${held.join(', ')}): import loads into a new, empty database only; create one, point the configuration at it and run the import before any server starts on it`, 409);
        },
        beforeCommit: async (trx, loaded) => {
          if (!withoutAuditLog) await checkAuditChain(trx);
          // The import's own row, the chain's next (the document's carried head is now this database's).
          written = await auditLogRepository(trx).append({
            ...auditActor(actor), action: audit.action, targetType: audit.target.type, targetId: null, result: 'ok', reason: null, before: null,
            after: redact(audit.outcome!({ counts: loaded, exportedAt: header.exportedAt, auditHead: withoutAuditLog ? null : auditHead }).after),
          });
        },
      });
    } catch (err) {
      if (err instanceof ImportRefused) throw malformed(err.message);
      throw err;
    }
    return { counts, exportedAt: header.exportedAt, auditHead: withoutAuditLog ? null : auditHead };
  };
  let result: ImportResult;
  try {
    result = await run();
  } catch (err) {
    // Refused or failed, and rolled back with any row written in its transaction: the outcome's own row.
    return audited(services, actor, audit, () => Promise.reject(err));
  }
  const row = written!;
  services.log.info({ audit: { seq: row.seq, action: row.action, result: row.result, actor: row.actorType, actorId: row.actorId, target: row.targetId } }, 'audit');
  return result;
}

const altered = () => malformed('the document was changed after its export (its MAC does not match its lines, under this secrets.encryptionKey), or it is damaged or cut short: nothing was imported; export it again from the source');

function macMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * In the import's transaction, once the rows are loaded: the audit log holds exactly the rows from the
 * chain's anchor to its head, and they link and hash as `audit verify` checks them.
 */
async function checkAuditChain(trx: Knex.Transaction): Promise<void> {
  const audit = auditLogRepository(trx);
  const chain = await audit.chain();
  const span = await auditSpan(trx);
  const expected = chain.headSeq - chain.anchorSeq;
  if (span.rows !== expected || (span.rows > 0 && (span.firstSeq !== chain.anchorSeq + 1 || span.lastSeq !== chain.headSeq))) {
    throw malformed(`the document's audit log does not match its chain: ${span.rows} row(s)${span.rows ? ` (${span.firstSeq} to ${span.lastSeq})` : ''}, but the chain runs from its anchor (row ${chain.anchorSeq}) to its head (row ${chain.headSeq}): nothing was imported`);
  }
  const report = await verifyChain(audit);
  if (!report.ok) throw malformed(`the document's audit log does not verify (${report.message}): nothing was imported`);
}

async function* numbered(lines: AsyncIterable<string>): AsyncGenerator<{ text: string; n: number }> {
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() !== '') yield { text, n };
  }
}

function parseJson(text: string, n: number): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw malformed(`line ${n} is not JSON: the file is not a document of latchkey export, or it is damaged`);
  }
}

function parseHeader(text: string): ExportHeader {
  const h = parseJson(text, 1) as Partial<ExportHeader> | null;
  if (!h || typeof h !== 'object' || h.format !== EXPORT_FORMAT) throw malformed('line 1 is not the header of a latchkey export document');
  if (h.version !== EXPORT_VERSION) throw malformed(`the document has version ${String(h.version)}; this Latchkey reads version ${EXPORT_VERSION}`);
  if (typeof h.keyCheck !== 'string' || typeof h.exportedAt !== 'string' || !Array.isArray(h.migrations) || !h.migrations.every((m) => typeof m === 'string')) {
    throw malformed('the document\'s header lacks its keyCheck, exportedAt or migrations');
  }
  return h as ExportHeader;
}

function checkKey(services: Services, header: ExportHeader): void {
  let opened: string | undefined;
  try {
    opened = createSealer(services.config.secrets.encryptionKey).open(header.keyCheck, KEY_CHECK.purpose);
  } catch {
    opened = undefined;
  }
  if (opened !== KEY_CHECK.text) {
    throw new OperationError('import.other_key', 'the document\'s secrets were sealed under another secrets.encryptionKey: configure the key of the system it came from (LATCHKEY_ENCRYPTION_KEY), or its TOTP seeds, client secrets and signing keys would be unreadable', 409);
  }
}

type Line = { table: ExportTable; row: ExportRow } | { end: true; counts: Partial<Record<ExportTable, number>>; mac?: unknown };

function parseLine(text: string, n: number): Line {
  const v = parseJson(text, n) as Record<string, unknown> | null;
  if (v && typeof v === 'object' && v.end === true && v.counts && typeof v.counts === 'object') return v as Line;
  if (!v || typeof v !== 'object' || typeof v.table !== 'string' || !EXPORT_TABLE_NAMES.includes(v.table as ExportTable) || !v.row || typeof v.row !== 'object' || Array.isArray(v.row)) {
    throw malformed(`line ${n} is not a row of a known table`);
  }
  return v as Line;
}
