/**
 * Standalone pages outside an interaction (sign-up, email verification, password reset): never cached,
 * always carrying a fresh CSRF token for their forms, with each field's message next to the field.
 */
import type { Context } from 'koa';
import type { z } from 'zod';
import type { Translate } from '../i18n.ts';
import type { Csrf } from './csrf.ts';
import type { Render } from './render.ts';

export type FieldErrors = Partial<Record<string, string>>;

export function pageRenderer(render: Render, csrf: Csrf) {
  return function page(ctx: Context, template: string, vars: Record<string, unknown> = {}, status = 200): void {
    ctx.set('Cache-Control', 'no-store');
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = render(template, { csrf: csrf.token(ctx), errors: {}, ...vars });
  };
}

export type PageRenderer = ReturnType<typeof pageRenderer>;

/** The first message of each field of a failed parse (messages are string keys; zod's own become a generic one), translated. */
export function fieldErrors(error: z.ZodError, t: Translate): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of error.issues) errors[String(issue.path[0] ?? 'form')] ??= t(t.has(issue.message) ? issue.message : 'forms.invalid');
  return errors;
}

/** A submitted text value cut to `max` characters, to show back in the form (never a password). */
export const echo = (value: string | undefined, max: number): string => (value ?? '').slice(0, max);
