/**
 * The console's audit section, read as a table (ConsoleKit in context.ts): the log a page at a time,
 * newest first, with the export's filters and an "Older" link that carries the keyset cursor; each row's
 * before and after readable; the export as a streamed CSV or NDJSON download with the same filters; and
 * the verification of the hash chain. Each is an operation of src/admin/operations/audit.ts, which checks
 * the role (`audit.read`: administrators and auditors) and leaves its own row.
 */
import type Router from '@koa/router';
import type { AuditRow } from '../audit/chain.ts';
import { listAudit, verifyAudit, type AuditListInput } from '../admin/operations/audit.ts';
import { OperationError } from '../admin/operations/actor.ts';
import { timeMarkup } from '../http/render.ts';
import { sendAuditExport } from './audit-export.ts';
import type { ConsoleContext, ConsoleKit } from './context.ts';
import { refusedOn } from './kit.ts';

/** The filters as the page's query names them (and the form's fields): text as typed. */
const FILTERS = ['since', 'until', 'action', 'actor', 'target', 'result'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

export function auditRoutes(router: Router, kit: ConsoleKit): void {
  const refused = refusedOn(kit, 'admin/audit.njk');
  router.get('/audit', kit.signedIn, refused, showAudit(kit));
  router.get('/audit/export', kit.signedIn, refused, exportAudit(kit));
  router.post('/audit/verify', kit.form, kit.signedIn, refused, verifyChain(kit));
}

const queryText = (ctx: ConsoleContext, name: string, max = 200) => {
  const v = ctx.query[name];
  return (typeof v === 'string' ? v : '').trim().slice(0, max);
};

function filtersOf(ctx: ConsoleContext): Filters {
  return Object.fromEntries(FILTERS.map((f) => [f, queryText(ctx, f, f === 'action' ? 2000 : 200)])) as Filters;
}

/** The filters as the operations take them: empty ones left out; actions separated by commas or spaces. */
function queryInput(f: Filters): AuditListInput {
  const actions = f.action.split(/[\s,]+/).filter(Boolean).slice(0, 50);
  return {
    ...(f.since ? { since: f.since } : {}),
    ...(f.until ? { until: f.until } : {}),
    ...(actions.length ? { actions } : {}),
    ...(f.actor ? { actor: f.actor } : {}),
    ...(f.target ? { target: f.target } : {}),
    ...(f.result ? { result: f.result } : {}),
  };
}

/** A console path with the filters that are set (and more parameters), for links that keep them. */
function withFilters(path: string, f: Filters, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams(Object.entries({ ...f, ...extra }).filter(([, v]) => v));
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

const json = (value: unknown) => (value === null ? undefined : JSON.stringify(value, null, 2));

function rowOf(r: AuditRow, self: string) {
  const actor = r.actorType === 'cli' ? 'cli' : `${r.actorType}:${r.actorId ?? ''}`;
  const target = r.targetType ? `${r.targetType}${r.targetId ? `:${r.targetId}` : ''}` : '';
  return {
    seq: r.seq, time: timeMarkup(r.time), action: r.action, result: r.result, reason: r.reason,
    actor, actorAcr: r.actorAcr, self: r.actorType === 'user' && r.actorId === self,
    ip: r.ip, userAgent: r.userAgent, requestId: r.requestId, target,
    before: json(r.before), after: json(r.after),
  };
}

function showAudit(kit: ConsoleKit) {
  return async function auditPage(ctx: ConsoleContext) {
    const filters = filtersOf(ctx);
    const cursor = queryText(ctx, 'cursor', 100);
    try {
      const list = await listAudit(kit.deps, ctx.state.actor, { ...queryInput(filters), ...(cursor ? { cursor } : {}) });
      kit.page(ctx, 'admin/audit.njk', {
        filters,
        rows: list.items.map((r) => rowOf(r, ctx.state.user.id)),
        older: list.nextCursor && withFilters('/admin/audit', filters, { cursor: list.nextCursor }),
        newest: cursor ? withFilters('/admin/audit', filters) : undefined,
        exports: { csv: withFilters('/admin/audit/export', filters, { format: 'csv' }), ndjson: withFilters('/admin/audit/export', filters, { format: 'ndjson' }) },
      });
    } catch (err) {
      // A filter the operation refused: the form again, its message next to the field it names.
      if (!(err instanceof OperationError) || err.status !== 400) throw err;
      const field = err.field === 'actions' ? 'action' : err.field;
      const errors = field && (FILTERS as readonly string[]).includes(field) ? { [field]: err.message } : {};
      kit.page(ctx, 'admin/audit.njk', { filters, rows: [], errors, error: Object.keys(errors).length ? undefined : err.message }, 400);
    }
  };
}

function exportAudit(kit: ConsoleKit) {
  return async function auditExport(ctx: ConsoleContext) {
    await sendAuditExport(kit, ctx, { ...queryInput(filtersOf(ctx)), format: queryText(ctx, 'format', 20) || 'csv' });
  };
}

function verifyChain(kit: ConsoleKit) {
  return async function verify(ctx: ConsoleContext) {
    const report = await verifyAudit(kit.deps, ctx.state.actor);
    kit.page(ctx, 'admin/audit-verify.njk', { report });
  };
}
