/**
 * Verifies the audit log's hash chain (chain.ts): walks the rows in seq order from the anchor, a batch at a
 * time, and reports the first row that is missing, out of place or altered. Rows appended while it walks
 * (after the head it read first) are left for the next run; a retention purge that moves the anchor while
 * it walks makes it start again from the new anchor.
 */
import type { AuditLogRepository, ChainState } from '../store/audit-log.ts';
import { rowHash } from './chain.ts';

export type ChainProblem =
  /** Rows from `seq` on are missing (deleted), up to the next row found or the head. */
  | 'missing'
  /** The row at `seq` does not link to the row before it (replaced, reordered, or its link edited). */
  | 'link'
  /** The row at `seq` is not what its hash was taken over (edited). */
  | 'hash'
  /** The last row is not the head the chain recorded. */
  | 'head';

export type ChainReport =
  | { ok: true; checked: number; anchorSeq: number; headSeq: number }
  | { ok: false; checked: number; anchorSeq: number; headSeq: number; seq: number; problem: ChainProblem; message: string };

const BATCH = 1000;
const RESTARTS = 3;

export async function verifyChain(audit: AuditLogRepository, batch = BATCH): Promise<ChainReport> {
  let start = await audit.chain();
  for (let attempt = 0; ; attempt++) {
    const report = await walk(audit, start, batch);
    if (report.ok || attempt >= RESTARTS) return report;
    // A purge moved the anchor under us: the walk's rows went with it. Start again from the new anchor.
    const now = await audit.chain();
    if (now.anchorSeq === start.anchorSeq) return report;
    start = now;
  }
}

async function walk(audit: AuditLogRepository, chain: ChainState, batch: number): Promise<ChainReport> {
  const base = { anchorSeq: chain.anchorSeq, headSeq: chain.headSeq };
  let prev = { seq: chain.anchorSeq, hash: chain.anchorHash };
  let checked = 0;
  const broken = (seq: number, problem: ChainProblem, message: string): ChainReport => ({ ok: false, checked, ...base, seq, problem, message });
  for (;;) {
    const rows = await audit.range(prev.seq, chain.headSeq, batch);
    for (const row of rows) {
      if (row.seq !== prev.seq + 1) {
        const span = row.seq - prev.seq - 1;
        return broken(prev.seq + 1, 'missing', `${span === 1 ? `row ${prev.seq + 1} is` : `rows ${prev.seq + 1} to ${row.seq - 1} are`} missing (deleted)`);
      }
      if (row.prevHash !== prev.hash) return broken(row.seq, 'link', `row ${row.seq} does not link to ${prev.seq === chain.anchorSeq && prev.seq > 0 ? `the anchor (row ${prev.seq})` : `row ${prev.seq}`}`);
      if (rowHash(row) !== row.hash) return broken(row.seq, 'hash', `row ${row.seq} was altered: its hash does not match its content`);
      prev = { seq: row.seq, hash: row.hash };
      checked++;
    }
    if (rows.length < batch) break;
  }
  if (prev.seq < chain.headSeq) {
    const span = chain.headSeq - prev.seq;
    return broken(prev.seq + 1, 'missing', `${span === 1 ? `row ${chain.headSeq} is` : `rows ${prev.seq + 1} to ${chain.headSeq} are`} missing at the end (deleted)`);
  }
  if (prev.hash !== chain.headHash) return broken(prev.seq, 'head', `row ${prev.seq} is not the head the chain recorded`);
  return { ok: true, checked, ...base };
}
