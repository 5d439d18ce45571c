/**
 * The CLI's commands, as functions of (arguments, input) -> (output, exit code) over Services, so the same
 * code runs in the `latchkey` process or, for the embedded database, inside the running server. Each one
 * is declared once in command-table.ts (its options and their help), and implemented here: parsed input ->
 * an operation (admin/operations/, which the console and the REST API call too) -> print.
 */
import { randomUUID } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { AppError } from '../errors.ts';
import type { Services } from '../services.ts';
import type { ExportTable } from '../store/export.ts';
import type { Values } from './command-line.ts';
import { COMMANDS, readCommandLine, type CommandName, type CommandResult } from './command-table.ts';
import { OperationError, type Actor } from './operations/actor.ts';
import { exportAudit, verifyAudit } from './operations/audit.ts';
import { audited } from './operations/audited.ts';
import { breakGlass } from './operations/break-glass.ts';
import { exportDatabase } from './operations/export.ts';
import { importDatabase } from './operations/import.ts';
import { authorize } from './operations/permissions.ts';
import { addClient, disableClient, enableClient, listClients, removeClient, rotateClientSecret, updateClient } from './operations/clients.ts';
import { listKeys, retireKey, rotateKeys, rotateVapidKey } from './operations/keys.ts';
import { activationDelay } from '../oidc/keys.ts';
import { changeRoles, disableUser, enableUser, sendResetLink, unlockUser } from './operations/user-access.ts';
import { resetTwoStep } from './operations/two-step-reset.ts';
import { listSessions, revokeSessions } from './operations/user-sessions.ts';
import { addUser, deleteUser, inviteUser, listUsers, searchUsers, type UserView } from './operations/users.ts';

export interface CommandIo {
  /** Standard input, read in full by the caller when a command needs it. */
  stdin: () => Promise<string>;
  /**
   * Where a command that streams (`audit export`) writes as it goes, waiting when the reader is slow; without
   * it, the output is collected in the result like any other.
   */
  stdout?: (text: string) => Promise<void>;
}

export type { CommandResult };

const table = (rows: string[][]) => {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
};

const iso = (d: Date | null) => (d ? d.toISOString() : '');
const userJson = (u: UserView) => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: iso(u.createdAt) });

type Print = {
  print: (s: string) => void;
  json: (v: unknown) => void;
  /** Writes through io.stdout (after what was printed before) when there is one. */
  stream: (s: string) => Promise<void>;
  /** The exit status when the command ran but its answer is "no" (a broken audit chain). */
  exit: (code: number) => void;
  /** The CLI, with one request id per command: every audit row of this run carries it. */
  actor: Actor;
};
type Input<K extends CommandName> = { values: Values<(typeof COMMANDS)[K]['options']>; operand: string | undefined };

/** One implementation per command of the table, no more and no fewer (a missing one fails to compile). */
const RUN: { [K in CommandName]: (input: Input<K>, services: Services, io: CommandIo, out: Print) => Promise<void> } = {
  async migrate(_input, services, _io, { print, actor }) {
    const done = await audited(services, actor, { action: 'database.migrate', target: { type: 'database' }, outcome: (applied) => ({ after: { applied } }) },
      () => {
        authorize(actor, 'database.migrate');
        return services.database.migrate();
      });
    print(done.length ? `applied ${done.length} migration(s): ${done.join(', ')}` : 'database is up to date');
  },

  async export({ values }, services, _io, { print, stream, actor }) {
    if (values.out === undefined) {
      // The document goes to standard output, in pieces of about 64 KiB; a summary would spoil it.
      const out = buffered(stream);
      await exportDatabase(services, actor, out.write);
      return out.flush();
    }
    const file = await openNewFile(values.out);
    const out = buffered((text) => file.appendFile(text, 'utf8'));
    let counts;
    try {
      counts = await exportDatabase(services, actor, out.write);
      await out.flush();
      await file.sync();
    } catch (err) {
      // A partial document must not look like a backup.
      await file.close().catch(() => {});
      await rm(values.out, { force: true });
      throw err;
    }
    await file.close();
    print(`exported ${describeCounts(counts)} to ${values.out}`);
    print('It holds password hashes and sealed secrets: keep it as you keep a backup. Load it with "latchkey import" under the same secrets.encryptionKey.');
  },

  async import({ values, operand }, services, _io, { print, json, actor }) {
    const file = operand!;
    let input;
    try {
      input = await open(file, 'r');
    } catch (err) {
      throw new OperationError('import.file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let done;
    try {
      const lines = createInterface({ input: input.createReadStream({ encoding: 'utf8' }), crlfDelay: Infinity });
      done = await importDatabase(services, actor, lines, { withoutAuditLog: values['without-audit-log'] });
    } finally {
      await input.close().catch(() => {});
    }
    if (values.json) return json(done);
    print(`imported ${describeCounts(done.counts)} from ${file} (exported ${done.exportedAt})`);
    if (done.auditHead) print(`the audit log continues the source's chain from row ${done.auditHead.seq}; "latchkey audit verify" checks it`);
    else print('the document\'s audit log was left out; keep the file as its record');
    print('Servers started on this database now serve these users, clients and keys; users sign in again (sessions and tokens were not carried).');
  },

  async 'users add'({ values }, services, io, { print, json, actor }) {
    const password = (await io.stdin()).replace(/\r?\n$/, '');
    const user = await addUser(services, actor, { email: values.email, name: values.name, password, admin: values.admin });
    if (values.json) json({ id: user.id, email: user.email, roles: user.roles });
    else print(`created user ${user.email} (${user.id})${values.admin ? ' with the admin role' : ''}`);
  },

  async 'users list'({ values }, services, _io, { print, json, actor }) {
    const view = (await listUsers(services, actor)).map((u) => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: iso(u.createdAt) }));
    if (values.json) json(view);
    else print(table([['ID', 'EMAIL', 'NAME', 'ROLES', 'STATUS', 'CREATED'], ...view.map((u) => [u.id, u.email, u.name ?? '', u.roles.join(','), u.status, u.createdAt])]));
  },

  async 'users search'({ values }, services, _io, { print, json, actor }) {
    const page = await searchUsers(services, actor, {
      query: values.query, status: values.status, twoStep: values['two-step'], locked: values.locked, limit: values.limit, cursor: values.cursor,
    });
    const items = page.items.map(userJson);
    if (values.json) return json({ items, nextCursor: page.nextCursor });
    print(table([['ID', 'EMAIL', 'NAME', 'ROLES', 'STATUS', 'CREATED'], ...items.map((u) => [u.id, u.email, u.name ?? '', u.roles.join(','), u.status, u.createdAt])]));
    if (page.nextCursor) print(`more: --cursor ${page.nextCursor}`);
  },

  async 'users invite'({ values }, services, _io, { print, json, actor }) {
    const user = await inviteUser(services, actor, { email: values.email, name: values.name, roles: values.role });
    if (values.json) return json({ ...userJson(user), inviteExpiresAt: iso(user.expiresAt) });
    print(`invited ${user.email} (${user.id}): the link to choose a password went to that address and works once until ${iso(user.expiresAt)}`);
  },

  async 'users reset-link'({ operand }, services, _io, { print, actor }) {
    const user = await sendResetLink(services, actor, operand!);
    print(`sent a password reset link to ${user.email}`);
  },

  async 'users reset-two-step'({ values, operand }, services, _io, { print, json, actor }) {
    if (values.all && values.method?.length) throw new OperationError('two_step_reset.methods_conflict', 'either --method ID (repeatable) or --all, not both', 400, 'all');
    const done = await resetTwoStep(services, actor, operand!, { methods: values.all ? 'all' : values.method ?? [], proof: values.proof, ticket: values.ticket });
    if (values.json) return json({ ...userJson(done), removed: done.removed, sessionsEnded: done.sessionsEnded, notified: done.notified, linkExpiresAt: iso(done.linkExpiresAt) });
    const removed = done.removed.length ? done.removed.map((m) => `${m.kind} "${m.label}"`).join(', ') : 'nothing';
    print(`reset two-step verification of ${done.email} (${done.id}): removed ${removed}; ${done.sessionsEnded} session(s) ended, every grant and token revoked`);
    print(`a single-use link (until ${iso(done.linkExpiresAt)}) went to ${done.notified[0]}; told: ${done.notified.join(', ')}`);
  },

  async 'users disable'({ values, operand }, services, _io, { print, json, actor }) {
    const user = await disableUser(services, actor, operand!);
    if (values.json) return json({ ...userJson(user), sessionsEnded: user.sessionsEnded });
    print(`disabled ${user.email} (${user.id}); ${user.sessionsEnded} session(s) ended, every grant and token revoked`);
  },

  async 'users enable'({ operand }, services, _io, { print, actor }) {
    const user = await enableUser(services, actor, operand!);
    print(`enabled ${user.email} (${user.id})`);
  },

  async 'users unlock'({ operand }, services, _io, { print, actor }) {
    const user = await unlockUser(services, actor, operand!);
    print(user.wasLocked ? `unlocked ${user.email}: failed sign-ins cleared` : `${user.email} was not locked; failed sign-ins cleared`);
  },

  async 'users sessions'({ values, operand }, services, _io, { print, json, actor }) {
    const sessions = (await listSessions(services, actor, operand!)).map((s) => ({
      id: s.id, authTime: iso(s.authTime), acr: s.acr, ip: s.ip, userAgent: s.userAgent, lastSeenAt: iso(s.lastSeenAt), expiresAt: iso(s.expiresAt),
    }));
    if (values.json) return json(sessions);
    print(table([['ID', 'SIGNED IN', 'LAST SEEN', 'IP', 'BROWSER'], ...sessions.map((s) => [s.id, s.authTime, s.lastSeenAt, s.ip ?? '', s.userAgent ?? ''])]));
  },

  async 'users revoke-sessions'({ values, operand }, services, _io, { print, actor }) {
    const { sessionsEnded } = await revokeSessions(services, actor, operand!, values.session);
    print(values.session ? `ended session ${values.session}` : `ended ${sessionsEnded} session(s); every grant and token of the account is revoked`);
  },

  async 'users roles'({ values, operand }, services, _io, { print, json, actor }) {
    const user = await changeRoles(services, actor, operand!, { grant: values.grant, revoke: values.revoke });
    if (values.json) return json(userJson(user));
    print(`${user.email} has the role(s): ${user.roles.join(', ') || '(none)'}`);
  },

  async 'users delete'({ operand }, services, _io, { print, actor }) {
    const user = await deleteUser(services, actor, operand!);
    print(`deleted ${user.email} (${user.id}); their security events and audit rows stay`);
  },

  async 'clients add'({ values }, services, _io, { print, json, actor }) {
    const client = await addClient(services, actor, {
      name: values.name,
      redirectUris: values['redirect-uri'] ?? [],
      postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
      ...(values['backchannel-logout-uri'] ? { backchannelLogoutUri: values['backchannel-logout-uri'] } : {}),
      ...(values['grant-type'] ? { grantTypes: values['grant-type'] as never } : {}),
      public: !!values.public,
      resourceServer: !!values['resource-server'],
      pkce: !values['no-pkce'],
      // --skip-consent says what it does; --first-party says why: the same switch.
      firstParty: !!(values['first-party'] || values['skip-consent']),
      ...(values['auth-method'] ? { authMethod: values['auth-method'] as never } : {}),
      ...(values['id-token-alg'] ? { idTokenAlg: values['id-token-alg'] as never } : {}),
      ...(values['minimum-acr'] ? { minimumAcr: values['minimum-acr'] as never } : {}),
      ...(values['ciba-mode'] ? { cibaMode: values['ciba-mode'] as never } : {}),
      ...(values['ciba-notification-endpoint'] ? { cibaNotificationEndpoint: values['ciba-notification-endpoint'] } : {}),
      ...(values.scope ? { scopes: scopeList(values.scope) } : {}),
    });
    if (values.json) return json({ client_id: client.clientId, client_secret: client.clientSecret ?? null, ...client.metadata });
    print(`client_id:     ${client.clientId}`);
    if (client.clientSecret) {
      print(`client_secret: ${client.clientSecret}`);
      print('Store the secret now: it is not shown again.');
    } else print('public client: no secret; it must use PKCE (S256).');
  },

  async 'clients list'({ values }, services, _io, { print, json, actor }) {
    const clients = await listClients(services, actor);
    if (values.json) return json(clients.map((c) => ({ client_id: c.clientId, name: c.name, ...c.metadata, created_at: iso(c.createdAt), disabled_at: c.disabledAt && iso(c.disabledAt) })));
    print(table([['CLIENT_ID', 'NAME', 'AUTH', 'GRANTS', 'REDIRECT URIS'], ...clients.map((c) => [
      c.clientId, c.disabledAt ? `${c.name} (disabled)` : c.name, String(c.metadata.token_endpoint_auth_method), (c.metadata.grant_types as string[]).join(','),
      (c.metadata.redirect_uris as string[]).join(' '),
    ])]));
  },

  async 'clients remove'({ operand }, services, _io, { print, actor }) {
    await removeClient(services, actor, operand!);
    print(`removed client ${operand!}`);
  },

  async 'clients update'({ values, operand }, services, _io, { print, json, actor }) {
    const unset = new Set(values.unset ?? []);
    for (const u of unset) {
      if (!(UNSETTABLE as readonly string[]).includes(u)) throw new OperationError('client.unset_unknown', `${u} is not one of ${UNSETTABLE.join(', ')}`, 400, 'unset');
      if (values[u as (typeof UNSETTABLE)[number]] !== undefined) throw new OperationError('client.unset_and_set', `--${u} is given and unset: choose one`, 400, 'unset');
    }
    const client = await updateClient(services, actor, operand!, {
      name: values.name,
      redirectUris: values['redirect-uri'],
      postLogoutRedirectUris: unset.has('post-logout-redirect-uri') ? [] : values['post-logout-redirect-uri'],
      grantTypes: values['grant-type'] as never,
      authMethod: values['auth-method'] as never,
      idTokenAlg: values['id-token-alg'] as never,
      minimumAcr: unset.has('minimum-acr') ? null : values['minimum-acr'] as never,
      firstParty: yesNo(values['first-party'], 'first-party'),
      logoUri: unset.has('logo-uri') ? null : values['logo-uri'],
      backchannelLogoutUri: unset.has('backchannel-logout-uri') ? null : values['backchannel-logout-uri'],
      backchannelLogoutSessionRequired: yesNo(values['backchannel-logout-session'], 'backchannel-logout-session'),
      scopes: values.scope && scopeList(values.scope),
    });
    if (values.json) return json({ client_id: client.clientId, ...client.metadata, disabled_at: client.disabledAt && iso(client.disabledAt) });
    print(`updated client ${client.clientId} (${client.name}); running servers use it at once`);
    print(table(Object.entries(client.metadata).map(([k, v]) => [`  ${k}:`, Array.isArray(v) ? v.join(' ') : String(v)])));
  },

  async 'clients rotate-secret'({ values, operand }, services, _io, { print, json, actor }) {
    const rotated = await rotateClientSecret(services, actor, operand!, values.grace === undefined ? {} : { graceSeconds: graceSeconds(values.grace) });
    const until = rotated.previousValidUntil && iso(rotated.previousValidUntil);
    if (values.json) return json({ client_id: rotated.clientId, client_secret: rotated.clientSecret, previous_secret_valid_until: until });
    print(`client_id:     ${rotated.clientId}`);
    print(`client_secret: ${rotated.clientSecret}`);
    print('Store the secret now: it is not shown again.');
    print(until ? `The old secret keeps working until ${until}, then stops.` : 'The old secret stopped working at once.');
  },

  async 'clients disable'({ operand }, services, _io, { print, actor }) {
    await disableClient(services, actor, operand!);
    print(`disabled client ${operand!}: it gets invalid_client everywhere and its tokens stop working until it is enabled again`);
  },

  async 'clients enable'({ operand }, services, _io, { print, actor }) {
    await enableClient(services, actor, operand!);
    print(`enabled client ${operand!}`);
  },

  async 'keys list'({ values }, services, _io, { print, json, actor }) {
    const view = (await listKeys(services, actor)).map((k) => ({
      kid: k.kid, alg: k.alg, state: k.state, createdAt: iso(k.createdAt), activatesAt: iso(k.activatesAt), retiredAt: iso(k.retiredAt), publishedUntil: iso(k.publishedUntil),
    }));
    if (values.json) json(view);
    else print(table([['KID', 'ALG', 'STATE', 'CREATED', 'PUBLISHED UNTIL'], ...view.map((k) => [k.kid, k.alg, k.state, k.createdAt, k.publishedUntil || (k.activatesAt ? `(signs from ${k.activatesAt})` : '(active)')])]));
  },

  async 'keys rotate'({ values }, services, _io, { print, json, actor }) {
    if (values.vapid) {
      if (values.alg?.length) throw new OperationError('keys.vapid_with_alg', '--vapid rotates the VAPID key alone: leave out --alg', 400, 'alg');
      const key = await rotateVapidKey(services, actor);
      if (values.json) json({ vapid: key });
      else print(`new VAPID key: ${key.id}\nphones get prompts only while their app is open until they open it once and subscribe again with the new key`);
      return;
    }
    const now = values.now === true;
    const kids = await rotateKeys(services, actor, values.alg, { now });
    const after = now ? 0 : activationDelay(services.config);
    if (values.json) json({ rotated: kids, signsAfterSeconds: after });
    else if (now) print(`new active key(s): ${kids.join(', ')}\nrunning servers sign with them within ${services.config.keys.refreshSeconds} s; until then a server that has not reloaded its keys may not verify their tokens\nthe old keys are retired and stay in the JWKS until the tokens they signed have expired`);
    else print(`new key(s): ${kids.join(', ')}\npublished now; they start signing in ${after} s, once every running server publishes them (keys.refreshSeconds × 2)\nthe keys they replace are then retired and stay in the JWKS until the tokens they signed have expired`);
  },

  async 'keys retire'({ values, operand }, services, _io, { print, json, actor }) {
    const key = await retireKey(services, actor, operand!);
    if (values.json) return json({ kid: key.kid, alg: key.alg, state: key.state, retiredAt: iso(key.retiredAt), publishedUntil: iso(key.publishedUntil) });
    print(`retired ${key.alg} key ${key.kid}: it signs nothing more and stays in the JWKS until ${iso(key.publishedUntil)}, when the tokens it signed have expired; running servers stop signing with it within ${services.config.keys.refreshSeconds} s`);
  },

  async 'audit export'({ values }, services, _io, { stream, actor }) {
    await exportAudit(services, actor, {
      format: values.format, since: values.since, until: values.until, actions: values.action,
      actor: values.actor, target: values.target, result: values.result,
    }, stream);
  },

  async 'audit verify'({ values }, services, _io, { print, json, exit, actor }) {
    const report = await verifyAudit(services, actor);
    if (values.json) json(report);
    else if (report.ok) {
      print(`audit log intact: ${report.checked} row(s) verified, ${report.anchorSeq ? `from the anchor (row ${report.anchorSeq}, the last one purged)` : 'from the first row'} to row ${report.headSeq}`);
    } else print(`audit log broken at row ${report.seq}: ${report.message}`);
    if (!report.ok) exit(1);
  },

  async 'admin break-glass'({ values }, services, _io, { print, json, actor }) {
    const { link, expiresAt } = await breakGlass(services, actor);
    if (values.json) return json({ link, expiresAt: iso(expiresAt) });
    print(`Open this single-use link within 15 minutes (until ${iso(expiresAt)}) to create an administrator account:`);
    print(`  ${link}`);
    print('The console will ask the new account to set up a second factor. Every use is in the audit log.');
  },
};

/** What `clients update --unset` takes away. */
const UNSETTABLE = ['minimum-acr', 'logo-uri', 'backchannel-logout-uri', 'post-logout-redirect-uri'] as const satisfies readonly (keyof (typeof COMMANDS)['clients update']['options'])[];

/** Collects small writes into pieces of about 64 KiB before handing them on. */
function buffered(sink: (text: string) => Promise<unknown>) {
  let pending = '';
  return {
    write: async (text: string) => {
      pending += text;
      if (pending.length >= 65536) {
        const piece = pending;
        pending = '';
        await sink(piece);
      }
    },
    flush: async () => {
      if (pending) await sink(pending);
      pending = '';
    },
  };
}

/** A new file, readable by its owner only; never overwrites one (a backup already there stays). */
async function openNewFile(file: string) {
  try {
    return await open(file, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new OperationError('export.file', code === 'EEXIST' ? `${file} already exists: choose a new file name` : `cannot write ${file}: ${code ?? (err as Error).message}`, 400, 'out');
  }
}

function describeCounts(c: Record<ExportTable, number>): string {
  return `${c.users} user(s), ${c.authenticators} method(s), ${c.clients} client(s), ${c.signing_keys} signing key(s), ${c.audit_log} audit row(s)`;
}

/** `--scope`: each value one scope or several separated by spaces ("admin:users.read admin:keys"). */
function scopeList(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(/\s+/)).filter(Boolean);
}

function yesNo(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw new OperationError('usage.yes_no', `${value} must be yes or no`, 400, flag);
}

/** `--grace`: 0, or a whole number of seconds, minutes, hours or days (90s, 30m, 24h, 7d). */
function graceSeconds(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m || (m[2] === '' && m[1] !== '0')) throw new OperationError('client.grace_invalid', `${text} is not a duration: 0, or a number with s, m, h or d (24h, 7d)`, 400, 'grace');
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** An operation's refusal as the CLI says it: naming the flag it is about. */
function refusal(err: OperationError): string {
  return err.field ? `${err.field === 'password' ? 'password' : `--${err.field}`}: ${err.message}` : err.message;
}

export async function runCommand(argv: string[], services: Services, io: CommandIo): Promise<CommandResult> {
  const line = readCommandLine(argv);
  if (!('kind' in line)) return line;
  let stdout = '';
  let code = 0;
  const print = (s: string) => (stdout += s.endsWith('\n') || s === '' ? s : `${s}\n`);
  const json = (v: unknown) => print(JSON.stringify(v, null, 2));
  const stream = async (s: string) => {
    if (!io.stdout) return void (stdout += s);
    const before = stdout;
    stdout = '';
    if (before) await io.stdout(before);
    await io.stdout(s);
  };
  const actor: Actor = { via: 'cli', requestId: randomUUID() };
  try {
    const run = RUN[line.name] as (input: Input<CommandName>, ...rest: [Services, CommandIo, Print]) => Promise<void>;
    await run({ values: line.values as never, operand: line.operand }, services, io, { print, json, stream, exit: (c) => (code = c), actor });
    return { code, stdout, stderr: '' };
  } catch (err) {
    // Refusals of the operation's input read as usage errors, as they always have (exit 2).
    if (err instanceof OperationError) return { code: 2, stdout, stderr: `latchkey: ${refusal(err)}\n` };
    if (err instanceof AppError && err.expose) return { code: 1, stdout, stderr: `latchkey: ${err.message}\n` };
    services.log.error({ err }, 'command failed');
    return { code: 1, stdout, stderr: `latchkey: the command failed: ${(err as Error).message}\n` };
  }
}
