/**
 * The audit log's export as a browser download: the operation (`exportAudit`) writes its text a chunk at a
 * time into the response as it reads the rows, so an export of any size never sits in memory. Its filters
 * are checked before the first byte is sent: a refused query is an error page, not a broken download.
 */
import { PassThrough } from 'node:stream';
import { exportAudit, type AuditQueryInput } from '../admin/operations/audit.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';

const TYPES: Record<string, string> = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson; charset=utf-8' };

/** `latchkey-audit-20250131T120000Z.csv`: when it was taken, in UTC. */
const fileName = (format: string, at: Date) => `latchkey-audit-${at.toISOString().replace(/[-:]|\.\d+/g, '')}.${format}`;

/** Resolves when the stream can take more, or is gone (never rejects: the next write sees it destroyed). */
function drained(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Raised inside the operation's `write` when the browser went away: the export stops there (and its row says error). */
class DownloadClosed extends Error {
  override name = 'DownloadClosed';
}

export async function sendAuditExport(kit: ConsoleKit, ctx: ConsoleContext, input: AuditQueryInput): Promise<void> {
  const body = new PassThrough();
  let started!: () => void;
  const firstChunk = new Promise<void>((resolve) => (started = resolve));
  const write = async (text: string) => {
    if (body.destroyed) throw new DownloadClosed('the download was closed');
    started();
    if (!body.write(text)) await drained(body);
  };
  const running = exportAudit(kit.deps, ctx.state.actor, input, write);
  // Either the first chunk is ready (the query was taken) or the operation ended: refused, failed or done.
  await Promise.race([firstChunk, running]);
  const format = input.format ?? 'ndjson';
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Content-Disposition', `attachment; filename="${fileName(format, new Date())}"`);
  ctx.type = TYPES[format] ?? 'application/octet-stream';
  ctx.body = body;
  running.then(() => body.end(), (err: unknown) => {
    if (!(err instanceof DownloadClosed)) kit.deps.log.error({ err }, 'audit export failed while streaming');
    body.destroy(err as Error);
  });
}
