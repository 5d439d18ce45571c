/**
 * Break-glass: when every administrator is locked out (lost password, lost second factor, a disabled or
 * deleted last admin…), the machine's operator, who already holds the configuration and the database, gets
 * a single-use link (stored hashed, 15 minutes) to the setup page, where they create a new administrator
 * account for themself. The console then still asks that account for a second factor (it enrols one at its
 * first sign-in). Only the CLI may issue it, it is audited, and the link is printed once, never logged or
 * stored in clear.
 */
import type { Services } from '../../services.ts';
import { OperationError, type Actor } from './actor.ts';
import { audited } from './audited.ts';
import { authorize } from './permissions.ts';

export const BREAK_GLASS_TTL_SECONDS = 15 * 60;

export async function breakGlass(services: Services, actor: Actor): Promise<{ link: string; expiresAt: Date }> {
  return audited(services, actor, {
    action: 'admin.break_glass',
    target: { type: 'user' },
    outcome: (r) => ({ after: { expiresAt: r.expiresAt } }),
  }, async () => {
    authorize(actor, 'roles.grant');
    if (actor.via !== 'cli') throw new OperationError('break_glass.cli_only', 'break-glass links are issued on the server\'s machine only (latchkey admin break-glass)', 403);
    const token = await services.store.codes.issue('admin_setup', null, BREAK_GLASS_TTL_SECONDS, { breakGlass: true });
    return { link: `${services.config.issuer}/setup?token=${token}`, expiresAt: new Date(Date.now() + BREAK_GLASS_TTL_SECONDS * 1000) };
  });
}
