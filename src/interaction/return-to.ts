/**
 * The pages outside an interaction (sign-up, email verification, password reset) remember which sign-in
 * sent the user there, so that "Back to sign in" returns to it while it is still alive.
 */
import { preferUiLocales } from '../i18n.ts';
import type { InteractionDeps } from './context.ts';

/** oidc-provider's interaction ids are nanoids; anything else is dropped, never echoed. */
const UID = /^[A-Za-z0-9_-]{16,64}$/;

export function interactionUid(value: unknown): string | undefined {
  return typeof value === 'string' && UID.test(value) ? value : undefined;
}

/**
 * The uid when that interaction still exists (a link back to it would work), else undefined. The page then
 * speaks the language the app asked for (its ui_locales), as the sign-in page it came from did.
 */
export async function liveInteraction(deps: Pick<InteractionDeps, 'provider'>, value: unknown): Promise<string | undefined> {
  const uid = interactionUid(value);
  if (!uid) return undefined;
  const found = await deps.provider().Interaction.find(uid);
  if (found) preferUiLocales(found.params?.ui_locales);
  return found ? uid : undefined;
}
