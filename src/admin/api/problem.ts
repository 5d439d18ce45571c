/**
 * Errors of the admin REST API as RFC 9457 problem details (`application/problem+json`): `type`, `title`,
 * `status`, `detail`, and our stable `code` and, when the error is about one input, its `field`. Every
 * 4xx and 5xx under /admin/api is one of these; a 5xx says nothing of its cause (the log has it).
 */
import { STATUS_CODES } from 'node:http';
import type { Context } from 'koa';
import { z } from 'zod';
import { AppError } from '../../errors.ts';
import { OperationError } from '../operations/actor.ts';

export const PROBLEM_TYPE = 'application/problem+json';

export const problemSchema = z.strictObject({
  type: z.string().describe('urn:latchkey:problem:<code>'),
  title: z.string(),
  status: z.int().min(400).max(599),
  detail: z.string(),
  code: z.string().describe('A stable code, such as permission.denied or request.invalid'),
  field: z.string().optional().describe('The input (JSON field, query or path parameter) the problem is about'),
}).meta({ id: 'Problem', description: 'RFC 9457 problem details' });

export type Problem = z.infer<typeof problemSchema>;

/** An error raised at the API's edge: a status, a code, and what the caller may read; `headers` go with it. */
export class ApiProblem extends AppError {
  override name = 'ApiProblem';
  constructor(code: string, status: number, detail: string, readonly field?: string, readonly headers: Record<string, string> = {}) {
    super(code, status, detail, true);
  }
}

const problem = (status: number, code: string, detail: string, field?: string): Problem => ({
  type: `urn:latchkey:problem:${code}`, title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...(field ? { field } : {}),
});

/** What the caller sees of any error: its own words when it is meant for them (a 4xx), else nothing but "internal error". */
export function toProblem(err: unknown): Problem {
  if (err instanceof ApiProblem || err instanceof OperationError) return problem(err.status, err.code, err.message, err.field);
  if (err instanceof AppError && err.expose && err.status < 500) {
    const fields = err.details?.fields as Record<string, string> | undefined;
    const field = fields && Object.keys(fields).find((f) => f !== '_');
    const detail = fields ? Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ') : err.message;
    return problem(err.status, err.code, detail, field);
  }
  const e = err as { status?: unknown; expose?: unknown; message?: unknown };
  // Koa's own client errors (bad URL encoding): safe to show.
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return problem(e.status, 'request.invalid', e.expose === true && typeof e.message === 'string' ? e.message : 'The request was not valid.');
  }
  return problem(500, 'server_error', 'internal error');
}

export function sendProblem(ctx: Context, p: Problem, headers: Record<string, string> = {}): void {
  ctx.status = p.status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  ctx.body = JSON.stringify(p);
  ctx.type = PROBLEM_TYPE;
}
