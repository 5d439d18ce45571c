/** Helpers the account forms share (reading and checking the form itself is http/csrf.ts checkedForm). */
import type { AccountDeps } from './context.ts';

/** The first issue's message key of a failed parse, translated. */
export const firstProblem = (deps: AccountDeps, issues: readonly { message: string }[]) => deps.render.t(issues[0]!.message);
