/**
 * The console's step-up names what it confirms: the console sends `latchkey_action` (STEP_UP_ACTION_PARAM)
 * with its authorization request, and the sign-in and verification pages say "The admin console asks you to
 * confirm it's you to: <action>". Only for the console's own client and only for one of its sensitive
 * actions, in words from our own strings: any other app, or any other value, shows nothing.
 */
import { isSensitiveAction } from '../console/context.ts';
import type { Translate } from '../i18n.ts';
import { STEP_UP_ACTION_PARAM } from '../oidc/admin-api.ts';
import { ADMIN_APP } from './app.ts';

/** The action's name for the page, or undefined. */
export function consoleActionName(t: Translate, params: Record<string, unknown>): string | undefined {
  const action = params[STEP_UP_ACTION_PARAM];
  if (params.client_id !== ADMIN_APP.clientId || !isSensitiveAction(action)) return undefined;
  return t(`console.stepUp.action.${action}`);
}
