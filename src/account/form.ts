/** The POST step every account form shares: read the urlencoded body, check its CSRF token and Origin. */
import type { Next } from 'koa';
import { readForm } from '../http/body.ts';
import type { AccountContext, AccountDeps } from './context.ts';

export function checkedForm(deps: AccountDeps) {
  return async function accountForm(ctx: AccountContext, next: Next) {
    const form = await readForm(ctx);
    deps.csrf.verify(ctx, form.csrf);
    ctx.state.form = form;
    await next();
  };
}

/** The first issue's message key of a failed parse, translated. */
export const firstProblem = (deps: AccountDeps, issues: readonly { message: string }[]) => deps.render.t(issues[0]!.message);

/** Text without control characters (names, labels). */
export const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;
