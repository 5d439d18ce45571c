/**
 * `latchkey export`: the accounts, clients and keys of a database as one document, to load into another
 * database with `latchkey import` (import.ts), such as when moving from the embedded database to
 * PostgreSQL. The document is NDJSON, one JSON value a line, so neither end holds it all in memory:
 *
 *   {"format":"latchkey-export","version":1,"exportedAt":"…","migrations":["001_initial",…],"keyCheck":"v1.…"}
 *   {"table":"users","row":{…}}            … one line per row, tables in store/export.ts' order
 *   {"end":true,"counts":{"users":12,…},"mac":"…"}   the last line: a document without it was cut short
 *
 * What is carried and what is not: store/export.ts. Rows are as stored: password and answer hashes, and
 * sealed secrets (TOTP seeds, client secrets, private keys), which stay sealed under the `secrets` key of
 * the source; `keyCheck` is a value sealed under that key, which the target must open (the same key) before
 * it loads anything. `mac` is an HMAC-SHA256 over every line before the last, keyed from that key too (a
 * key of its own, derived with HKDF): any change to the document (a row added, removed or edited, the audit
 * chain's head moved, a keyCheck copied from another document) makes import refuse it, before its commit.
 * The document holds password hashes: keep it as you keep a backup.
 *
 * On the embedded database the server's one connection is held only while the snapshot is read: the
 * document goes to a temporary file (its owner's only, removed afterwards) and is streamed from there, so a
 * slow reader of `latchkey export`'s output (through the admin socket) does not stall the server.
 */
import { createHmac, hkdfSync, type Hmac } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSealer } from '../../store/seal.ts';
import { appliedMigrations, exportRows, type ExportTable } from '../../store/export.ts';
import type { Services } from '../../services.ts';
import type { Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';

export const EXPORT_FORMAT = 'latchkey-export';
export const EXPORT_VERSION = 1;
/** The purpose `keyCheck` is sealed for, and its plain text. */
export const KEY_CHECK = { purpose: 'export.key-check', text: 'latchkey export key check' } as const;

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  exportedAt: string;
  /** The source's schema: the target must have applied every one of these. */
  migrations: string[];
  keyCheck: string;
}

/** The document's MAC, over each line (with its newline) in turn, under a key derived from `encryptionKey`. */
export class DocumentMac {
  private readonly hmac: Hmac;
  constructor(encryptionKey: string) {
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(encryptionKey, 'utf8'), Buffer.alloc(0), 'latchkey export mac v1', 32));
    this.hmac = createHmac('sha256', key);
  }
  /** `line` as written: one JSON value and its newline. */
  update(line: string): void {
    this.hmac.update(line, 'utf8');
  }
  digest(): string {
    return this.hmac.digest('base64url');
  }
}

/**
 * Writes the document, a line at a time (each ending in a newline), to `write`, which may wait. The
 * rows come from one snapshot of the database. Returns the number of rows of each table.
 */
export async function exportDatabase(services: Services, actor: Actor, write: (line: string) => Promise<void>): Promise<Record<ExportTable, number>> {
  return audited(services, actor, { action: 'database.export', target: { type: 'database' }, outcome: (counts) => ({ after: { counts } }) }, async () => {
    // Every password hash and sealed secret of the system: the CLI's operator (an administrator) only.
    authorize(actor, 'database.migrate');
    const db = services.database.knex;
    if (services.database.kind === 'embedded') return spooled(write, (toFile) => writeDocument(services, db, toFile));
    return writeDocument(services, db, write);
  });
}

/** The document itself: the header, the rows of one snapshot, and the last line with its MAC. */
async function writeDocument(services: Services, db: Services['database']['knex'], write: (line: string) => Promise<void>): Promise<Record<ExportTable, number>> {
  const mac = new DocumentMac(services.config.secrets.encryptionKey);
  const line = (text: string) => {
    mac.update(text);
    return write(text);
  };
  const header: ExportHeader = {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: new Date().toISOString(),
    migrations: await appliedMigrations(db),
    keyCheck: createSealer(services.config.secrets.encryptionKey).seal(KEY_CHECK.text, KEY_CHECK.purpose),
  };
  await line(`${JSON.stringify(header)}\n`);
  const counts = await exportRows(db, (table, row) => line(`${JSON.stringify({ table, row })}\n`));
  await write(`${JSON.stringify({ end: true, counts, mac: mac.digest() })}\n`);
  return counts;
}

/**
 * Runs `produce` into a temporary file (in a directory of its own, readable by its owner only), then hands
 * the file's text to `write` in pieces: `produce` never waits for `write`'s reader. The file goes in any case.
 */
async function spooled<R>(write: (text: string) => Promise<void>, produce: (write: (text: string) => Promise<void>) => Promise<R>): Promise<R> {
  const dir = await mkdtemp(path.join(tmpdir(), 'latchkey-spool-'));
  try {
    const file = await open(path.join(dir, 'export.ndjson'), 'wx+', 0o600);
    try {
      let pending = '';
      const result = await produce(async (text) => {
        pending += text;
        if (pending.length >= 65536) {
          const piece = pending;
          pending = '';
          await file.appendFile(piece, 'utf8');
        }
      });
      if (pending) await file.appendFile(pending, 'utf8');
      for await (const piece of file.createReadStream({ start: 0, encoding: 'utf8', autoClose: false })) await write(piece as string);
      return result;
    } finally {
      await file.close().catch(() => {});
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
