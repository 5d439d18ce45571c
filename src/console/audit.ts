/** The console's audit section (stub: its routes come next). */
import type Router from '@koa/router';
import type { ConsoleKit } from './context.ts';

export function auditRoutes(_router: Router, _kit: ConsoleKit): void {}
