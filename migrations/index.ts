/** Every migration, in order. Released migrations are never edited: add a new one. */
import * as initial from './001_initial.ts';
import * as account from './002_account.ts';
import * as twoStep from './003_two_step.ts';
import * as revokedGrants from './004_revoked_grants.ts';
import * as pendingStatus from './005_pending_status.ts';
import * as consents from './006_consents.ts';
import * as platformUnknown from './007_platform_unknown.ts';
import * as keepSignedIn from './008_keep_signed_in.ts';
import * as userLanguage from './009_user_language.ts';
import * as auditLog from './010_audit_log.ts';
import * as roles from './011_roles.ts';
import * as push from './012_push.ts';
import * as clientAdmin from './013_client_admin.ts';
import * as recoveryPending from './014_recovery_pending.ts';
import * as consoleSessions from './015_console_sessions.ts';
import * as signingKeyActivation from './016_signing_key_activation.ts';

export interface Migration {
  name: string;
  up(knex: import('knex').Knex): Promise<void>;
  down(knex: import('knex').Knex): Promise<void>;
}

export const migrations: Migration[] = [
  { name: '001_initial', ...initial },
  { name: '002_account', ...account },
  { name: '003_two_step', ...twoStep },
  { name: '004_revoked_grants', ...revokedGrants },
  { name: '005_pending_status', ...pendingStatus },
  { name: '006_consents', ...consents },
  { name: '007_platform_unknown', ...platformUnknown },
  { name: '008_keep_signed_in', ...keepSignedIn },
  { name: '009_user_language', ...userLanguage },
  { name: '010_audit_log', ...auditLog },
  { name: '011_roles', ...roles },
  { name: '012_push', ...push },
  { name: '013_client_admin', ...clientAdmin },
  { name: '014_recovery_pending', ...recoveryPending },
  { name: '015_console_sessions', ...consoleSessions },
  { name: '016_signing_key_activation', ...signingKeyActivation },
];
