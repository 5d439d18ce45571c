/** The console's keys section (stub: its routes come next). */
import type Router from '@koa/router';
import type { ConsoleKit } from './context.ts';

export function keyRoutes(_router: Router, _kit: ConsoleKit): void {}
