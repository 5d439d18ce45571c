/**
 * Reads an urlencoded or JSON request body with a size limit, then validates it into a typed value (zod).
 * Kept rather than @koa/bodyparser or co-body: 30 lines that count the limit while streaming, answer with
 * our own 413/415 pages, and keep repeated fields where /auth's POST needs them (URLSearchParams).
 */
import type { Context, Next } from 'koa';
import type { z } from 'zod';
import { AppError } from '../errors.ts';

const LIMIT = 64 * 1024;

async function readRaw(ctx: Context, limit = LIMIT): Promise<string> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new AppError('request.too_large', 413, 'The request is too large.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new AppError('request.too_large', 413, 'The request is too large.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The urlencoded body as sent, repeated fields and all, at most `limit` bytes. */
export async function readFormParams(ctx: Context, limit = LIMIT): Promise<URLSearchParams> {
  if (!ctx.is('application/x-www-form-urlencoded')) {
    throw new AppError('request.unsupported_media_type', 415, 'Send the form as application/x-www-form-urlencoded.');
  }
  const params = new URLSearchParams(await readRaw(ctx, limit));
  refuseNul([...params], 'The form');
  return params;
}

/** The body as a flat record of strings; repeated fields keep their last value. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  return Object.fromEntries(await readFormParams(ctx));
}

export async function readJson(ctx: Context): Promise<unknown> {
  if (!ctx.is('application/json')) throw new AppError('request.unsupported_media_type', 415, 'Send application/json.');
  const text = await readRaw(ctx);
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new AppError('request.invalid_json', 400, 'The body is not valid JSON.');
  }
  refuseNul(value, 'The body');
  return value;
}

/** Whether a string in `value` (keys included, down to a depth no schema accepts) holds a NUL character. */
function holdsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (depth > 64 || value === null || typeof value !== 'object') return false;
  const parts = Array.isArray(value) ? value : [...Object.keys(value), ...Object.values(value)];
  return parts.some((part) => holdsNul(part, depth + 1));
}

/**
 * A NUL character belongs in no text Latchkey reads (names, ids, filters; PostgreSQL refuses it in text):
 * a 400 that says so, before anything looks the value up or stores it.
 */
export function refuseNul(value: unknown, what: string): void {
  if (holdsNul(value)) throw new AppError('request.nul_character', 400, `${what} holds a NUL character, which no field accepts.`);
}

/** Refuses a URL whose path or query holds an encoded NUL (%00), except under `except` (which reads its own). */
export function refuseNulInUrl(except: string) {
  return async function nulInUrl(ctx: Context, next: Next) {
    if (/%00/i.test(ctx.url) && !ctx.path.startsWith(except)) refuseNul('\0', 'The address');
    await next();
  };
}

/** Validates `value`; on failure throws a 400 whose details name each bad field. */
export function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const fields: Record<string, string> = {};
  for (const issue of result.error.issues) fields[issue.path.join('.') || '_'] ??= issue.message;
  throw new AppError('request.invalid', 400, 'Some fields are not valid.', true, { fields });
}
