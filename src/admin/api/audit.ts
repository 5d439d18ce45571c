/**
 * The audit-log routes of the admin API: a page of rows (newest first, by keyset), the export as CSV or
 * NDJSON streamed as it is read, and the verification of the hash chain (src/admin/operations/audit.ts).
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import type { AuditRow } from '../../audit/chain.ts';
import { auditQuery, exportAudit, listAudit, verifyAudit } from '../operations/audit.ts';
import { defineRoute, pageOf, pageQuery, time } from './route.ts';

const rowSchema = z.strictObject({
  seq: z.int(), time, actor_type: z.enum(['user', 'client', 'cli']), actor_id: z.string().nullable(), actor_acr: z.string().nullable(),
  ip: z.string().nullable(), user_agent: z.string().nullable(), request_id: z.string().nullable(), action: z.string(),
  target_type: z.string().nullable(), target_id: z.string().nullable(), result: z.enum(['ok', 'denied', 'error']), reason: z.string().nullable(),
  before: z.unknown().describe('The target before the action, redacted (JSON or null)'),
  after: z.unknown().describe('The target after the action, redacted (JSON or null)'),
  prev_hash: z.string(), hash: z.string(),
}).meta({ id: 'AuditRow' });

const rowJson = (r: AuditRow): z.input<typeof rowSchema> => ({
  seq: r.seq, time: r.time.toISOString(), actor_type: r.actorType, actor_id: r.actorId, actor_acr: r.actorAcr, ip: r.ip, user_agent: r.userAgent,
  request_id: r.requestId, action: r.action, target_type: r.targetType, target_id: r.targetId, result: r.result, reason: r.reason,
  before: r.before, after: r.after, prev_hash: r.prevHash, hash: r.hash,
});

const filters = {
  since: z.string().max(40).optional().describe('Only rows from this time on: a date (2025-01-31, UTC) or a time with its zone'),
  until: z.string().max(40).optional().describe('Only rows before this time (the same forms)'),
  action: z.union([z.string().max(100), z.array(z.string().max(100)).max(20)]).optional().describe('Only this action (repeat for several), such as users.disable'),
  actor: z.string().max(300).optional().describe('Only this actor: cli, user:ID, client:ID, or an ID'),
  target: z.string().max(300).optional().describe('Only this target: TYPE:ID (user:ID, client:ID) or an ID'),
  result: z.enum(['ok', 'denied', 'error']).optional(),
};

type Filters = z.output<z.ZodObject<typeof filters>>;
const filterInput = (q: Filters) => ({
  since: q.since, until: q.until, actions: q.action === undefined ? undefined : [q.action].flat(), actor: q.actor, target: q.target, result: q.result,
});

const EXPORT_TYPES = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson' } as const;

/** `write` for the export: waits while the client reads slower than the log is read, fails when it went away. */
function writerTo(stream: PassThrough): (text: string) => Promise<void> {
  const gone = new AbortController();
  stream.once('close', () => gone.abort());
  return async (text) => {
    if (stream.destroyed) throw new Error('the client went away');
    if (!stream.write(text)) await once(stream, 'drain', { signal: gone.signal });
  };
}

export const auditRoutes = [
  defineRoute({
    method: 'get', path: '/audit', operationId: 'listAudit', tag: 'audit', permission: 'audit.read', action: 'audit.list',
    summary: 'Rows of the audit log, newest first, a page at a time (keyset: rows added meanwhile never shift a page)',
    query: z.strictObject({ ...filters, ...pageQuery }), status: 200, response: pageOf(rowSchema),
    async handle({ services, actor, query }) {
      const page = await listAudit(services, actor, { ...filterInput(query), limit: query.limit, cursor: query.cursor });
      return { items: page.items.map(rowJson), next_cursor: page.nextCursor };
    },
  }),
  defineRoute({
    method: 'get', path: '/audit/export', operationId: 'exportAudit', tag: 'audit', permission: 'audit.read', action: 'audit.export',
    summary: 'The rows that match, oldest first, as CSV or NDJSON, streamed as they are read, with the hashes that chain them',
    query: z.strictObject({ format: z.enum(['csv', 'ndjson']).optional().describe('Default ndjson'), ...filters }),
    status: 200, stream: Object.values(EXPORT_TYPES),
    async handle({ services, actor, query, ctx, refuse }) {
      const input = { ...filterInput(query), format: query.format };
      // A bad filter is refused before anything is sent (the export itself would refuse it after the headers).
      const format = await Promise.resolve().then(() => auditQuery(input).format).catch(refuse);
      const body = new PassThrough();
      ctx.status = 200;
      ctx.type = EXPORT_TYPES[format];
      ctx.set('Content-Disposition', `attachment; filename="audit.${format}"`);
      ctx.body = body;
      exportAudit(services, actor, input, writerTo(body)).then(() => body.end(), (err: unknown) => {
        services.log.warn({ err }, 'audit export stopped');
        body.destroy();
      });
    },
  }),
  defineRoute({
    method: 'get', path: '/audit/verify', operationId: 'verifyAudit', tag: 'audit', permission: 'audit.read', action: 'audit.verify',
    summary: 'Check the hash chain from its anchor to its last row; the first broken row when there is one',
    status: 200,
    response: z.strictObject({
      ok: z.boolean(), checked: z.int(), anchor_seq: z.int(), head_seq: z.int(),
      seq: z.int().optional().describe('The first broken row'), problem: z.enum(['missing', 'link', 'hash', 'head']).optional(), message: z.string().optional(),
    }).meta({ id: 'ChainReport' }),
    async handle({ services, actor }) {
      const r = await verifyAudit(services, actor);
      const base = { ok: r.ok, checked: r.checked, anchor_seq: r.anchorSeq, head_seq: r.headSeq };
      return r.ok ? base : { ...base, seq: r.seq, problem: r.problem, message: r.message };
    },
  }),
];
