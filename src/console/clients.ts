/** The console's clients section (stub: its routes come next). */
import type Router from '@koa/router';
import type { ConsoleKit } from './context.ts';

export function clientRoutes(_router: Router, _kit: ConsoleKit): void {}
