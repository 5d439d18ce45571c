/**
 * Every `latchkey` command, declared once: its summary, operand and options with their help. The parser,
 * the usage and each command's `--help` are made from this table (command-line.ts), and commands.ts must
 * implement exactly these names. It imports nothing heavy, so help and usage errors answer at once.
 */
import { parseCommandLine, UsageError, usageErrorText, type CommandTable, type ParsedCommand } from './command-line.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const JSON_OPTION = { json: { type: 'boolean', help: 'print the result as JSON' } } as const;
const USER = { name: 'USER', help: 'the user\'s ID or email address' } as const;

// The lists of values below are the ones src/oidc/clients.ts and the key configuration accept (a test
// compares them); they are written out so that `--help` does not load the server's code.
export const COMMANDS = {
  migrate: {
    summary: 'apply database migrations (the server also does at start)',
    options: {},
  },
  export: {
    summary: 'write the users (with their password hashes and methods), clients, signing keys and the audit log as one document, to load into another database with "latchkey import"; secrets stay sealed under secrets.encryptionKey, and sessions and tokens are left out',
    options: {
      out: { type: 'string', value: 'FILE', help: 'write it to this new file, readable by its owner only (default: standard output); it holds password hashes: keep it as a backup is kept' },
    },
  },
  import: {
    summary: 'load a document of "latchkey export" into this database, which must be new and empty, in one transaction (all or nothing); it needs the same secrets.encryptionKey as the system it came from',
    operand: { name: 'FILE', help: 'the file "latchkey export --out" wrote' },
    options: {
      'without-audit-log': { type: 'boolean', help: 'leave the document\'s audit log out, when this database\'s audit log already has rows (its hash chain cannot be joined to another)' },
      ...JSON_OPTION,
    },
  },
  'users add': {
    summary: 'create a user, with the password read from standard input',
    options: {
      email: { type: 'string', value: 'E', help: 'their email address (unique, in any case)', required: true },
      name: { type: 'string', value: 'N', help: 'their name' },
      admin: { type: 'boolean', help: 'give them the admin role' },
      'password-stdin': {
        type: 'boolean', help: 'read the password from standard input (its first line)',
        required: 'the password is read from standard input, never from the command line',
      },
      ...JSON_OPTION,
    },
  },
  'users list': {
    summary: 'list users',
    options: { ...JSON_OPTION },
  },
  'users search': {
    summary: 'find users by email or name, newest first, a page at a time',
    options: {
      query: { type: 'string', value: 'Q', help: 'part of the email address or the name, in any case' },
      status: { type: 'string', value: 'S', help: 'only users with this status, one of active, disabled' },
      'two-step': { type: 'string', value: 'YN', help: 'yes: only users with a two-step method (an app, a text message, a passkey or a security key); no: only those without' },
      locked: { type: 'string', value: 'YN', help: 'yes: only users locked after too many failed sign-ins; no: only those not locked' },
      limit: { type: 'string', value: 'N', help: 'at most this many users, 1 to 100 (default: 50)' },
      cursor: { type: 'string', value: 'C', help: 'the page after the one that printed this cursor' },
      ...JSON_OPTION,
    },
  },
  'users invite': {
    summary: 'create a user without a password and email them a link (single use, 24 hours) to choose one; nobody else ever sees it',
    options: {
      email: { type: 'string', value: 'E', help: 'their email address (unique, in any case)', required: true },
      name: { type: 'string', value: 'N', help: 'their name' },
      role: { type: 'string', multiple: true, value: 'R', help: 'give them this role, one of admin, helpdesk, auditor' },
      ...JSON_OPTION,
    },
  },
  'users reset-link': {
    summary: 'email a user a link to choose a new password (the password reset\'s own)',
    operand: USER,
    options: {},
  },
  'users reset-two-step': {
    summary: 'after re-proving who a user is, remove the second factors they lost, sign them out everywhere and email a single-use link (24 hours) that asks for their password, then a new method and new recovery codes; never for an account that holds a role',
    operand: USER,
    options: {
      proof: { type: 'string', value: 'TEXT', help: 'how you re-proved who the caller is, such as "video call + ID document" (kept in the audit log)', required: true },
      ticket: { type: 'string', value: 'TEXT', help: 'the ticket reference or a note (kept in the audit log)', required: true },
      method: { type: 'string', multiple: true, value: 'ID', help: 'remove this method (an ID from the console or the API); recovery codes go with the last app, phone, passkey or key' },
      all: { type: 'boolean', help: 'remove every app, phone, passkey, security key and mobile app prompt, and the recovery codes (the security question stays)' },
      ...JSON_OPTION,
    },
  },
  'users disable': {
    summary: 'disable a user: every session and refresh token ends at once, and sign-in answers as for a wrong password',
    operand: USER,
    options: { ...JSON_OPTION },
  },
  'users enable': {
    summary: 'enable a disabled user again',
    operand: USER,
    options: {},
  },
  'users unlock': {
    summary: 'clear a user\'s failed sign-ins and the lock they led to',
    operand: USER,
    options: {},
  },
  'users sessions': {
    summary: 'list a user\'s sign-in sessions',
    operand: USER,
    options: { ...JSON_OPTION },
  },
  'users revoke-sessions': {
    summary: 'sign a user out: one session, or every session and every grant and token of the account',
    operand: USER,
    options: {
      session: { type: 'string', value: 'ID', help: 'only this session (an ID that "users sessions" printed; default: all of them)' },
    },
  },
  'users roles': {
    summary: 'grant or revoke a user\'s roles: admin (everything), helpdesk (users without a role), auditor (reading, the audit log included)',
    operand: USER,
    options: {
      grant: { type: 'string', multiple: true, value: 'R', help: 'give this role, one of admin, helpdesk, auditor' },
      revoke: { type: 'string', multiple: true, value: 'R', help: 'take this role away, one of admin, helpdesk, auditor (never the last active administrator\'s admin)' },
      ...JSON_OPTION,
    },
  },
  'users delete': {
    summary: 'delete a user, after ending their sessions and tokens; their security events and audit rows stay',
    operand: USER,
    options: {},
  },
  'clients add': {
    summary: 'register a client (an application whose users sign in here) and print its client_id and, once, its client_secret',
    options: {
      name: { type: 'string', value: 'N', help: 'the application\'s name, shown to its users', required: true },
      'redirect-uri': { type: 'string', multiple: true, value: 'U', help: 'where users return after signing in: absolute and exact, no wildcards or fragments, https except on loopback' },
      'post-logout-redirect-uri': { type: 'string', multiple: true, value: 'U', help: 'where users may be sent after signing out' },
      'backchannel-logout-uri': { type: 'string', value: 'U', help: 'where logout tokens are posted (back-channel logout)' },
      'grant-type': {
        type: 'string', multiple: true, value: 'T',
        help: 'one of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:openid:params:grant-type:ciba (default: authorization_code with refresh_token)',
      },
      'ciba-mode': { type: 'string', value: 'M', help: 'with the CIBA grant: how the app learns of the user\'s answer, one of poll, ping' },
      'ciba-notification-endpoint': { type: 'string', value: 'U', help: 'with --ciba-mode ping: where the result\'s notification is posted (https)' },
      public: { type: 'boolean', help: 'a single-page or native app: no secret, PKCE required' },
      'auth-method': {
        type: 'string', value: 'M',
        help: 'token endpoint authentication, one of client_secret_basic, client_secret_post, client_secret_jwt, none (default: client_secret_basic; none with --public)',
      },
      'no-pkce': { type: 'boolean', help: 'let an older server app skip PKCE until it can send a code challenge (not for public clients)' },
      'first-party': { type: 'boolean', help: 'an application of the same operator: its users are not asked for consent' },
      'skip-consent': { type: 'boolean', help: 'the same as --first-party' },
      'id-token-alg': { type: 'string', value: 'A', help: 'ID token signing algorithm, one of RS256, ES256, EdDSA (default: RS256)' },
      'minimum-acr': { type: 'string', value: 'L', help: 'the lowest level the client accepts, one of urn:latchkey:acr:1fa, urn:latchkey:acr:mfa, phr' },
      'resource-server': { type: 'boolean', help: 'an API that may introspect tokens issued to other clients (confidential clients only)' },
      scope: {
        type: 'string', multiple: true, value: 'S',
        help: 'the scopes it may ask for (default: any; the admin REST API honours only the admin:… scopes listed here), such as "admin:users.read admin:keys" for a client of that API (its only grant type client_credentials): admin:users.read, admin:users.write, admin:clients, admin:keys, admin:audit.read',
      },
      ...JSON_OPTION,
    },
  },
  'clients list': {
    summary: 'list clients (never their secrets)',
    options: { ...JSON_OPTION },
  },
  'clients remove': {
    summary: 'remove a client',
    operand: { name: 'CLIENT_ID', help: 'the client_id that "clients add" printed' },
    options: {},
  },
  'clients update': {
    summary: 'change a registered client: what is given replaces what it had (a list option replaces the whole list), checked as "clients add" checks it; running servers use it at once',
    operand: { name: 'CLIENT_ID', help: 'the client_id that "clients add" printed' },
    options: {
      name: { type: 'string', value: 'N', help: 'the application\'s name, shown to its users' },
      'redirect-uri': { type: 'string', multiple: true, value: 'U', help: 'where users return after signing in (the new list): absolute and exact, no wildcards or fragments, https except on loopback' },
      'post-logout-redirect-uri': { type: 'string', multiple: true, value: 'U', help: 'where users may be sent after signing out (the new list)' },
      'grant-type': {
        type: 'string', multiple: true, value: 'T',
        help: 'the new list of grant types, each one of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:openid:params:grant-type:ciba',
      },
      'auth-method': {
        type: 'string', value: 'M',
        help: 'token endpoint authentication, one of client_secret_basic, client_secret_post, client_secret_jwt (a public client stays none: register a new client to change that)',
      },
      'id-token-alg': { type: 'string', value: 'A', help: 'ID token signing algorithm, one of RS256, ES256, EdDSA (one with an active key)' },
      'minimum-acr': { type: 'string', value: 'L', help: 'the lowest level the client accepts, one of urn:latchkey:acr:1fa, urn:latchkey:acr:mfa, phr' },
      'first-party': { type: 'string', value: 'YN', help: 'yes: an application of the same operator, whose users are not asked for consent; no: they are asked' },
      'logo-uri': { type: 'string', value: 'U', help: 'the application\'s logo (https, or http on loopback)' },
      'backchannel-logout-uri': { type: 'string', value: 'U', help: 'where logout tokens are posted (back-channel logout)' },
      'backchannel-logout-session': { type: 'string', value: 'YN', help: 'yes (the default with a back-channel logout URI): logout tokens carry the session (sid); no: only the user' },
      scope: { type: 'string', multiple: true, value: 'S', help: 'the new list of scopes it may ask for (the admin API\'s: admin:users.read, admin:users.write, admin:clients, admin:keys, admin:audit.read)' },
      unset: {
        type: 'string', multiple: true, value: 'S',
        help: 'take a setting away, one of minimum-acr, logo-uri, backchannel-logout-uri, post-logout-redirect-uri',
      },
      ...JSON_OPTION,
    },
  },
  'clients rotate-secret': {
    summary: 'give a confidential client a new secret, printed once; the old one keeps working until the grace period ends, then stops',
    operand: { name: 'CLIENT_ID', help: 'the client_id that "clients add" printed' },
    options: {
      grace: { type: 'string', value: 'D', help: 'how long the old secret keeps working: 0, or a number with s, m, h or d, at most 30d (default: 24h; a leaked secret: 0; client_secret_jwt clients: 0 only)' },
      ...JSON_OPTION,
    },
  },
  'clients disable': {
    summary: 'disable a client: it gets invalid_client everywhere and its tokens stop working (inactive at introspection; a JWT access token a resource server checks itself lasts until it expires) until it is enabled again',
    operand: { name: 'CLIENT_ID', help: 'the client_id that "clients add" printed' },
    options: {},
  },
  'clients enable': {
    summary: 'enable a disabled client again: its tokens that have not expired meanwhile work again',
    operand: { name: 'CLIENT_ID', help: 'the client_id that "clients add" printed' },
    options: {},
  },
  'keys list': {
    summary: 'list signing keys and their state',
    options: { ...JSON_OPTION },
  },
  'keys rotate': {
    summary: 'a new signing key per algorithm, published at once and signing after two key refreshes (when every running server publishes it); the old ones stay in the JWKS until the tokens they signed have expired',
    options: {
      alg: { type: 'string', multiple: true, value: 'A', help: 'rotate only this algorithm\'s key, one of RS256, ES256, EdDSA (default: every configured one)' },
      now: { type: 'boolean', help: 'sign with the new keys at once, for a key thought compromised: tokens signed before every running server has reloaded its keys may not verify there' },
      vapid: {
        type: 'boolean',
        help: 'rotate the VAPID key that signs pushes to phones instead (not the signing keys): each phone gets prompts only while its app is open until it opens the app once and subscribes again',
      },
      ...JSON_OPTION,
    },
  },
  'keys retire': {
    summary: 'stop signing with a key now; it stays in the JWKS until the tokens it signed have expired (refused while its algorithm is still needed: rotate that key instead)',
    operand: { name: 'KID', help: 'the key\'s kid, as "keys list" prints it' },
    options: { ...JSON_OPTION },
  },
  'audit export': {
    summary: 'print the audit log, oldest first, a row at a time as NDJSON or CSV, with the hashes that chain its rows',
    options: {
      format: { type: 'string', value: 'F', help: 'one of csv, ndjson (default: ndjson)' },
      since: { type: 'string', value: 'T', help: 'only rows from this time on: a date (2025-01-31, UTC) or a time with its zone (2025-01-31T12:00:00Z)' },
      until: { type: 'string', value: 'T', help: 'only rows before this time (the same forms)' },
      action: { type: 'string', multiple: true, value: 'A', help: 'only this action, such as users.add, clients.remove, keys.rotate' },
      actor: { type: 'string', value: 'W', help: 'only this actor: cli, user:ID, client:ID, or an ID' },
      target: { type: 'string', value: 'X', help: 'only this target: TYPE:ID (user:ID, client:ID) or an ID' },
      result: { type: 'string', value: 'R', help: 'only this result, one of ok, denied, error' },
    },
  },
  'audit verify': {
    summary: 'check the audit log\'s hash chain from its anchor to its last row and report the first broken row (exit status 1)',
    options: { ...JSON_OPTION },
  },
  'admin break-glass': {
    summary: 'when every administrator is locked out: print a single-use link (15 minutes) that creates a new administrator account for you, the operator of this machine (audited; earlier setup links stop working)',
    options: { ...JSON_OPTION },
  },
} as const satisfies CommandTable;

export type CommandName = keyof typeof COMMANDS;

/** Reads the command line; a help text or a usage error is already the whole answer (no database needed). */
export function readCommandLine(argv: readonly string[]): (ParsedCommand & { name: CommandName }) | CommandResult {
  try {
    const line = parseCommandLine(COMMANDS, argv);
    return line.kind === 'help' ? { code: 0, stdout: line.text, stderr: '' } : { ...line, name: line.name as CommandName };
  } catch (err) {
    if (err instanceof UsageError) return { code: 2, stdout: '', stderr: usageErrorText(COMMANDS, err) };
    throw err;
  }
}
