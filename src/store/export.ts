/**
 * The rows `latchkey export` carries from one database to another, and their loading into an empty one
 * (admin/operations/export.ts and import.ts say what the document is). Rows go as they are stored: password
 * and answer hashes stay hashes, sealed secrets stay sealed (the target needs the same `secrets` key), ids
 * and the audit log's sequence numbers and hashes stay the same, so the chain still verifies.
 *
 * Not carried: what a running system makes and forgets (sessions, tokens, codes and grants of
 * oidc-provider, sign-ins in progress, pending steps, counters, one-time links, account and console
 * sessions), and what describes the old system's visitors rather than its accounts (known devices and
 * networks, session activity). Users sign in again on the new system; nothing they set up is lost.
 */
import type { Knex } from 'knex';
import type { Db } from './db.ts';

interface TableSpec {
  /** The key rows are read in (and paged by when it is one column). */
  key: readonly string[];
  /** Only these rows. */
  where?: Record<string, string>;
}

/**
 * Every table carried, in an order that loads parents before the rows that refer to them. Each row goes
 * with every column it has, so a column a later migration adds is carried without a change here.
 */
export const EXPORT_TABLES = {
  users: { key: ['id'] },
  authenticators: { key: ['id'] },
  // Recovery codes (hashed); every other purpose is a link or code in flight.
  recovery_codes: { key: ['id'], where: { purpose: 'recovery_code' } },
  vapid_keys: { key: ['id'] },
  push_devices: { key: ['id'] },
  clients: { key: ['client_id'] },
  consents: { key: ['user_id', 'client_id'] },
  signing_keys: { key: ['kid'] },
  security_events: { key: ['id'] },
  audit_log: { key: ['seq'] },
  // The chain's one row (id 1): its head and anchor.
  audit_chain: { key: ['id'] },
} as const satisfies Record<string, TableSpec>;

export type ExportTable = keyof typeof EXPORT_TABLES;
export const EXPORT_TABLE_NAMES = Object.keys(EXPORT_TABLES) as ExportTable[];

/** Where a carried table's rows live (recovery codes are some of one_time_codes'). */
const TABLE_OF: Partial<Record<ExportTable, string>> = { recovery_codes: 'one_time_codes' };
const sqlTable = (t: ExportTable) => TABLE_OF[t] ?? t;

export type ExportRow = Record<string, unknown>;

const PAGE = 500;

/** int8 as a number (the embedded database may answer a bigint, which JSON cannot hold). */
function plain(row: ExportRow): ExportRow {
  for (const [k, v] of Object.entries(row)) if (typeof v === 'bigint') row[k] = Number(v);
  return row;
}

/**
 * Reads every carried row from one snapshot (a read-only repeatable-read transaction, so rows written while
 * it runs are all in or all out), table by table in EXPORT_TABLES' order, and hands each to `write`, which
 * may wait (a slow reader slows the export). Returns the number of rows of each table.
 */
export async function exportRows(db: Db, write: (table: ExportTable, row: ExportRow) => Promise<void>): Promise<Record<ExportTable, number>> {
  return db.transaction(async (trx) => {
    await trx.raw('set transaction isolation level repeatable read, read only');
    const counts = Object.fromEntries(EXPORT_TABLE_NAMES.map((t) => [t, 0])) as Record<ExportTable, number>;
    for (const table of EXPORT_TABLE_NAMES) {
      const spec: TableSpec = EXPORT_TABLES[table];
      const single = spec.key.length === 1 ? spec.key[0]! : undefined;
      let after: unknown;
      for (let offset = 0; ; offset += PAGE) {
        const query = trx(sqlTable(table)).select('*').orderBy(spec.key.map((column) => ({ column }))).limit(PAGE);
        if (spec.where) query.where(spec.where);
        if (single && after !== undefined) query.where(single, '>', after as Knex.Value);
        else if (!single) query.offset(offset);
        const rows = (await query) as ExportRow[];
        for (const row of rows) {
          if (single) after = row[single];
          await write(table, plain(row));
          counts[table]++;
        }
        if (rows.length < PAGE) break;
      }
    }
    return counts;
  });
}

/** What holds data in a database that import would load into: counts of the rows that must be absent. */
export async function occupancy(db: Db): Promise<{ users: number; clients: number; signingKeys: number; vapidKeys: number; auditRows: number }> {
  const count = async (table: string) => Number(((await db(table).count({ n: '*' })) as { n: number | string }[])[0]!.n);
  return {
    users: await count('users'), clients: await count('clients'), signingKeys: await count('signing_keys'),
    vapidKeys: await count('vapid_keys'), auditRows: await count('audit_log'),
  };
}

export class ImportRefused extends Error {
  override name = 'ImportRefused';
}

export interface ImportOptions {
  /** Leave the audit log (and its chain) out: the target's log already has rows of its own. */
  withoutAuditLog: boolean;
  /** Checks the database in the transaction before any row is loaded (it is empty); throws to refuse. */
  checkEmpty: (occupied: Awaited<ReturnType<typeof occupancy>>) => void;
  /** Runs in the transaction once every row is loaded, before the commit; throws to refuse (nothing stays). */
  beforeCommit?: (trx: Knex.Transaction, counts: Record<ExportTable, number>) => Promise<void>;
}

/**
 * Loads `rows` (in EXPORT_TABLES' order, as exportRows wrote them) in one transaction: any failure (a
 * refusal, a bad row, a constraint, a document cut short, which `rows` reports by throwing) leaves the
 * database as it was. The security events' id sequence continues after the loaded ids; the audit chain's
 * head and anchor become the source's, so `audit verify` checks the carried rows and what follows them.
 */
export async function importRows(db: Db, rows: AsyncIterable<{ table: ExportTable; row: ExportRow }>, options: ImportOptions): Promise<Record<ExportTable, number>> {
  return db.transaction(async (trx) => {
    // No other writer (a server started meanwhile) can add a row under the check until this commits.
    await trx.raw('lock table users, clients, signing_keys, vapid_keys, audit_log, audit_chain in exclusive mode');
    options.checkEmpty(await occupancy(trx));
    const counts = Object.fromEntries(EXPORT_TABLE_NAMES.map((t) => [t, 0])) as Record<ExportTable, number>;
    let batch: ExportRow[] = [];
    let batchTable: ExportTable | undefined;
    const flush = async () => {
      if (!batchTable || batch.length === 0) return;
      if (batchTable === 'audit_chain') {
        if (batch.length !== 1) throw new ImportRefused('the document holds more than one audit chain head');
        await trx('audit_chain').where({ id: 1 }).update(batch[0]!);
      } else await trx(sqlTable(batchTable)).insert(batch);
      counts[batchTable] += batch.length;
      batch = [];
    };
    const columns = new Map<ExportTable, Map<string, string>>();
    const columnsOf = async (table: ExportTable) => {
      let types = columns.get(table);
      if (!types) {
        const found = (await trx('information_schema.columns').where({ table_schema: trx.raw('current_schema()'), table_name: sqlTable(table) })
          .select('column_name', 'data_type')) as { column_name: string; data_type: string }[];
        types = new Map(found.map((c) => [c.column_name, c.data_type]));
        columns.set(table, types);
      }
      return types;
    };
    let order = -1;
    for await (const { table, row } of rows) {
      const spec: TableSpec | undefined = EXPORT_TABLES[table];
      if (!spec) throw new ImportRefused(`unknown table ${String(table)}`);
      const at = EXPORT_TABLE_NAMES.indexOf(table);
      if (at < order) throw new ImportRefused(`rows of ${table} after those of ${EXPORT_TABLE_NAMES[order]}: the document is out of order`);
      if (options.withoutAuditLog && (table === 'audit_log' || table === 'audit_chain')) continue;
      if (table !== batchTable || batch.length >= PAGE) await flush();
      order = at;
      batchTable = table;
      const types = await columnsOf(table);
      const values: ExportRow = {};
      for (const [column, value] of Object.entries(row)) {
        const type = types.get(column);
        if (!type) throw new ImportRefused(`${table} has no column ${column} in this database`);
        if (table === 'audit_chain' && column === 'id') continue;
        // jsonb as JSON text: pg would turn an array into a SQL array.
        values[column] = value !== null && value !== undefined && (type === 'jsonb' || type === 'json') ? JSON.stringify(value) : value;
      }
      if (spec.where) Object.assign(values, spec.where);
      batch.push(values);
    }
    await flush();
    await trx.raw(`select setval(pg_get_serial_sequence('security_events', 'id'), coalesce(max(id), 0) + 1, false) from security_events`);
    await options.beforeCommit?.(trx, counts);
    return counts;
  });
}

/** The audit log's rows: how many, and the first and last seq (0 when there are none). */
export async function auditSpan(db: Db): Promise<{ rows: number; firstSeq: number; lastSeq: number }> {
  const row = (await db('audit_log').first(db.raw('count(*)::bigint as rows'), db.raw('coalesce(min(seq), 0)::bigint as "firstSeq"'), db.raw('coalesce(max(seq), 0)::bigint as "lastSeq"'))) as
    { rows: number; firstSeq: number; lastSeq: number };
  return { rows: Number(row.rows), firstSeq: Number(row.firstSeq), lastSeq: Number(row.lastSeq) };
}

/** The migrations applied to this database, in the order they ran. */
export async function appliedMigrations(db: Db): Promise<string[]> {
  return ((await db('knex_migrations').orderBy('id').select('name')) as { name: string }[]).map((r) => r.name);
}
