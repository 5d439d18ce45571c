/**
 * The CLI's commands, as functions of (arguments, input) -> (output, exit code) over Services, so the same
 * code runs in the `latchkey` process or, for the embedded database, inside the running server. Each one
 * is argv -> an operation (admin/operations/, which the console and the REST API call too) -> print.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AppError } from '../errors.ts';
import type { Services } from '../services.ts';
import { OperationError, type Actor } from './operations/actor.ts';
import { addClient, listClients, removeClient } from './operations/clients.ts';
import { listKeys, rotateKeys } from './operations/keys.ts';
import { addUser, listUsers } from './operations/users.ts';

export interface CommandIo {
  /** Standard input, read in full by the caller when a command needs it. */
  stdin: () => Promise<string>;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `Usage: latchkey <command> [options]

Commands:
  migrate                              apply database migrations
  users add --email E [--name N] [--admin] --password-stdin [--json]
  users list [--json]
  clients add --name N --redirect-uri U [--redirect-uri U2 …] [--post-logout-redirect-uri U …]
              [--backchannel-logout-uri U] [--grant-type T …] [--public] [--auth-method M] [--no-pkce]
              [--id-token-alg RS256|ES256|EdDSA] [--minimum-acr LEVEL] [--resource-server] [--json]
  clients list [--json]
  clients remove CLIENT_ID
  keys list [--json]
  keys rotate [--alg RS256|ES256|EdDSA …] [--json]

The configuration (config/default.yaml, LATCHKEY_CONFIG, LATCHKEY_* variables) is the server's, so
the CLI acts on the same database.`;

function args<T extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: T, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: positionals > 0, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length > positionals) throw new UsageError(`unexpected argument: ${parsed.positionals[positionals]}`);
  return parsed;
}

const table = (rows: string[][]) => {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
};

const iso = (d: Date | null) => (d ? d.toISOString() : '');

const CLI: Actor = { via: 'cli' };

type Print = { print: (s: string) => void; json: (v: unknown) => void };
type Command = (argv: string[], services: Services, io: CommandIo, out: Print) => Promise<void>;

const COMMANDS: Record<string, Command> = {
  async migrate(argv, services, _io, { print }) {
    args(argv, {});
    const done = await services.database.migrate();
    print(done.length ? `applied ${done.length} migration(s): ${done.join(', ')}` : 'database is up to date');
  },

  async 'users add'(argv, services, io, { print, json }) {
    const { values } = args(argv, {
      email: { type: 'string' }, name: { type: 'string' }, admin: { type: 'boolean' },
      'password-stdin': { type: 'boolean' }, json: { type: 'boolean' },
    });
    if (!values.email) throw new UsageError('--email is required');
    if (!values['password-stdin']) throw new UsageError('--password-stdin is required (the password is read from standard input, never from the command line)');
    const password = (await io.stdin()).replace(/\r?\n$/, '');
    const user = await addUser(services, CLI, { email: values.email, name: values.name, password, admin: values.admin });
    if (values.json) json({ id: user.id, email: user.email, roles: user.roles });
    else print(`created user ${user.email} (${user.id})${values.admin ? ' with the admin role' : ''}`);
  },

  async 'users list'(argv, services, _io, { print, json }) {
    const { values } = args(argv, { json: { type: 'boolean' } });
    const view = (await listUsers(services)).map((u) => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: iso(u.createdAt) }));
    if (values.json) json(view);
    else print(table([['ID', 'EMAIL', 'NAME', 'ROLES', 'STATUS', 'CREATED'], ...view.map((u) => [u.id, u.email, u.name ?? '', u.roles.join(','), u.status, u.createdAt])]));
  },

  async 'clients add'(argv, services, _io, { print, json }) {
    const { values } = args(argv, {
      name: { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true }, 'backchannel-logout-uri': { type: 'string' },
      'grant-type': { type: 'string', multiple: true }, public: { type: 'boolean' }, 'auth-method': { type: 'string' },
      'id-token-alg': { type: 'string' }, 'minimum-acr': { type: 'string' }, 'resource-server': { type: 'boolean' },
      'no-pkce': { type: 'boolean' }, json: { type: 'boolean' },
    });
    if (!values.name) throw new UsageError('--name is required');
    const client = await addClient(services, CLI, {
      name: values.name,
      redirectUris: values['redirect-uri'] ?? [],
      postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
      ...(values['backchannel-logout-uri'] ? { backchannelLogoutUri: values['backchannel-logout-uri'] } : {}),
      ...(values['grant-type'] ? { grantTypes: values['grant-type'] as never } : {}),
      public: !!values.public,
      resourceServer: !!values['resource-server'],
      pkce: !values['no-pkce'],
      ...(values['auth-method'] ? { authMethod: values['auth-method'] as never } : {}),
      ...(values['id-token-alg'] ? { idTokenAlg: values['id-token-alg'] as never } : {}),
      ...(values['minimum-acr'] ? { minimumAcr: values['minimum-acr'] as never } : {}),
    });
    if (values.json) return json({ client_id: client.clientId, client_secret: client.clientSecret ?? null, ...client.metadata });
    print(`client_id:     ${client.clientId}`);
    if (client.clientSecret) {
      print(`client_secret: ${client.clientSecret}`);
      print('Store the secret now: it is not shown again.');
    } else print('public client: no secret; it must use PKCE (S256).');
  },

  async 'clients list'(argv, services, _io, { print, json }) {
    const { values } = args(argv, { json: { type: 'boolean' } });
    const clients = await listClients(services);
    if (values.json) return json(clients.map((c) => ({ client_id: c.clientId, name: c.name, ...c.metadata, created_at: iso(c.createdAt) })));
    print(table([['CLIENT_ID', 'NAME', 'AUTH', 'GRANTS', 'REDIRECT URIS'], ...clients.map((c) => [
      c.clientId, c.name, String(c.metadata.token_endpoint_auth_method), (c.metadata.grant_types as string[]).join(','),
      (c.metadata.redirect_uris as string[]).join(' '),
    ])]));
  },

  async 'clients remove'(argv, services, _io, { print }) {
    const { positionals } = args(argv, {}, 1);
    const id = positionals[0];
    if (!id) throw new UsageError('clients remove needs a CLIENT_ID');
    await removeClient(services, CLI, id);
    print(`removed client ${id}`);
  },

  async 'keys list'(argv, services, _io, { print, json }) {
    const { values } = args(argv, { json: { type: 'boolean' } });
    const view = (await listKeys(services)).map((k) => ({
      kid: k.kid, alg: k.alg, state: k.state, createdAt: iso(k.createdAt), retiredAt: iso(k.retiredAt), publishedUntil: iso(k.publishedUntil),
    }));
    if (values.json) json(view);
    else print(table([['KID', 'ALG', 'STATE', 'CREATED', 'PUBLISHED UNTIL'], ...view.map((k) => [k.kid, k.alg, k.state, k.createdAt, k.publishedUntil || '(active)'])]));
  },

  async 'keys rotate'(argv, services, _io, { print, json }) {
    const { values } = args(argv, { alg: { type: 'string', multiple: true }, json: { type: 'boolean' } });
    const kids = await rotateKeys(services, CLI, values.alg);
    if (values.json) json({ rotated: kids });
    else print(`new active key(s): ${kids.join(', ')}\nretired keys stay in the JWKS until the tokens they signed have expired; running servers pick the new keys up within ${services.config.keys.refreshSeconds} s`);
  },
};

/** An operation's refusal as the CLI says it: naming the flag it is about. */
function usageOf(err: OperationError): UsageError {
  if (!err.field) return new UsageError(err.message);
  return new UsageError(`${err.field === 'password' ? 'password' : `--${err.field}`}: ${err.message}`);
}

export async function runCommand(argv: string[], services: Services, io: CommandIo): Promise<CommandResult> {
  let stdout = '';
  const print = (s: string) => (stdout += s.endsWith('\n') || s === '' ? s : `${s}\n`);
  const json = (v: unknown) => print(JSON.stringify(v, null, 2));
  try {
    const [group, action] = argv;
    if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
      print(USAGE);
      return { code: 0, stdout, stderr: '' };
    }
    const pair = action && !action.startsWith('-') ? `${group} ${action}` : undefined;
    const name = pair && Object.hasOwn(COMMANDS, pair) ? pair : Object.hasOwn(COMMANDS, group) ? group : undefined;
    if (!name) throw new UsageError(`unknown command: ${argv.join(' ')}`);
    try {
      await COMMANDS[name]!(argv.slice(name.split(' ').length), services, io, { print, json });
    } catch (err) {
      // Refusals of the operation's input read as usage errors, as they always have (exit 2).
      if (err instanceof OperationError) throw usageOf(err);
      throw err;
    }
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    if (err instanceof UsageError) return { code: 2, stdout, stderr: `latchkey: ${err.message}\n${err.message.startsWith('unknown command') ? `\n${USAGE}\n` : ''}` };
    if (err instanceof AppError && err.expose) return { code: 1, stdout, stderr: `latchkey: ${err.message}\n` };
    services.log.error({ err }, 'command failed');
    return { code: 1, stdout, stderr: `latchkey: the command failed: ${(err as Error).message}\n` };
  }
}
