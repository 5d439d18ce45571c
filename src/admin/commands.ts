/**
 * The CLI's commands, as functions of (arguments, input) -> (output, exit code) over Services, so the same
 * code runs in the `latchkey` process or, for the embedded database, inside the running server.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { passwordProblem } from '../factors/password.ts';
import { createRenderer } from '../http/render.ts';
import { registerClient } from '../oidc/clients.ts';
import { ensureSigningKeys, loadJwks, rotateSigningKeys } from '../oidc/keys.ts';
import { createProvider } from '../oidc/provider.ts';
import type { Services } from '../services.ts';
import type { KeyAlg } from '../store/signing-keys.ts';
import { DuplicateEmailError } from '../store/users.ts';

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

export async function runCommand(argv: string[], services: Services, io: CommandIo): Promise<CommandResult> {
  let stdout = '';
  const print = (s: string) => (stdout += s.endsWith('\n') || s === '' ? s : `${s}\n`);
  const json = (v: unknown) => print(JSON.stringify(v, null, 2));
  try {
    const [group, action, ...rest] = argv;
    const key = action && !action.startsWith('-') ? `${group} ${action}` : group;
    const tail = key === group ? argv.slice(1) : rest;
    switch (key) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        print(USAGE);
        break;
      case 'migrate': {
        args(tail, {});
        const done = await services.database.migrate();
        print(done.length ? `applied ${done.length} migration(s): ${done.join(', ')}` : 'database is up to date');
        break;
      }
      case 'users add': {
        const { values } = args(tail, {
          email: { type: 'string' }, name: { type: 'string' }, admin: { type: 'boolean' },
          'password-stdin': { type: 'boolean' }, json: { type: 'boolean' },
        });
        if (!values.email) throw new UsageError('--email is required');
        if (!values['password-stdin']) throw new UsageError('--password-stdin is required (the password is read from standard input, never from the command line)');
        const email = z.email().max(320).safeParse(values.email);
        if (!email.success) throw new UsageError(`--email: "${values.email}" is not a valid email address`);
        if (values.name !== undefined && values.name.length > 200) throw new UsageError('--name is at most 200 characters');
        const password = (await io.stdin()).replace(/\r?\n$/, '');
        const problem = passwordProblem(password, { email: email.data, name: values.name });
        if (problem) throw new UsageError(`password: ${createRenderer(services.config).t(problem.key, problem.vars)}`);
        let user;
        try {
          user = await services.store.users.create({
            email: email.data, name: values.name ?? null, passwordHash: await services.hasher.hash(password),
            roles: values.admin ? ['admin'] : [], emailVerified: true,
          });
        } catch (err) {
          if (err instanceof DuplicateEmailError) throw new UsageError(`a user with email ${email.data} already exists`);
          throw err;
        }
        await services.events.record({ type: 'user.created', userId: user.id, details: { via: 'cli', admin: !!values.admin } });
        if (values.json) json({ id: user.id, email: user.email, roles: user.roles });
        else print(`created user ${user.email} (${user.id})${values.admin ? ' with the admin role' : ''}`);
        break;
      }
      case 'users list': {
        const { values } = args(tail, { json: { type: 'boolean' } });
        const users = await services.store.users.list();
        const view = users.map((u) => ({ id: u.id, email: u.email, name: u.name, roles: u.roles, status: u.status, createdAt: iso(u.createdAt) }));
        if (values.json) json(view);
        else print(table([['ID', 'EMAIL', 'NAME', 'ROLES', 'STATUS', 'CREATED'], ...view.map((u) => [u.id, u.email, u.name ?? '', u.roles.join(','), u.status, u.createdAt])]));
        break;
      }
      case 'clients add': {
        const { values } = args(tail, {
          name: { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true },
          'post-logout-redirect-uri': { type: 'string', multiple: true }, 'backchannel-logout-uri': { type: 'string' },
          'grant-type': { type: 'string', multiple: true }, public: { type: 'boolean' }, 'auth-method': { type: 'string' },
          'id-token-alg': { type: 'string' }, 'minimum-acr': { type: 'string' }, 'resource-server': { type: 'boolean' },
          'no-pkce': { type: 'boolean' }, json: { type: 'boolean' },
        });
        if (!values.name) throw new UsageError('--name is required');
        // The provider validates the ID token algorithm against its keys: on a database no server has started
        // on yet there are none, and every client would be refused.
        await ensureSigningKeys(services.store, services.config);
        const provider = createProvider({
          config: services.config, store: services.store, log: services.log,
          render: createRenderer(services.config), jwks: await loadJwks(services.store),
        });
        const client = await registerClient(services.store, provider, {
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
        await services.events.record({ type: 'client.created', details: { clientId: client.clientId, via: 'cli' } });
        if (values.json) json({ client_id: client.clientId, client_secret: client.clientSecret ?? null, ...client.metadata });
        else {
          print(`client_id:     ${client.clientId}`);
          if (client.clientSecret) {
            print(`client_secret: ${client.clientSecret}`);
            print('Store the secret now: it is not shown again.');
          } else print('public client: no secret; it must use PKCE (S256).');
        }
        break;
      }
      case 'clients list': {
        const { values } = args(tail, { json: { type: 'boolean' } });
        const clients = await services.store.clients.list();
        const view = clients.map((c) => ({ client_id: c.clientId, name: c.name, ...c.metadata, created_at: iso(c.createdAt) }));
        if (values.json) json(view);
        else print(table([['CLIENT_ID', 'NAME', 'AUTH', 'GRANTS', 'REDIRECT URIS'], ...clients.map((c) => [
          c.clientId, c.name, String(c.metadata.token_endpoint_auth_method), (c.metadata.grant_types as string[]).join(','),
          (c.metadata.redirect_uris as string[]).join(' '),
        ])]));
        break;
      }
      case 'clients remove': {
        const { positionals } = args(tail, {}, 1);
        const id = positionals[0];
        if (!id) throw new UsageError('clients remove needs a CLIENT_ID');
        if (!(await services.store.clients.remove(id))) throw new UsageError(`no client with id ${id}`);
        await services.events.record({ type: 'client.removed', details: { clientId: id, via: 'cli' } });
        print(`removed client ${id}`);
        break;
      }
      case 'keys list': {
        const { values } = args(tail, { json: { type: 'boolean' } });
        await ensureSigningKeys(services.store, services.config);
        const keys = await services.store.signingKeys.list();
        const view = keys.map((k) => ({ kid: k.kid, alg: k.alg, state: k.state, createdAt: iso(k.createdAt), retiredAt: iso(k.retiredAt), publishedUntil: iso(k.expiresAt) }));
        if (values.json) json(view);
        else print(table([['KID', 'ALG', 'STATE', 'CREATED', 'PUBLISHED UNTIL'], ...view.map((k) => [k.kid, k.alg, k.state, k.createdAt, k.publishedUntil || '(active)'])]));
        break;
      }
      case 'keys rotate': {
        const { values } = args(tail, { alg: { type: 'string', multiple: true }, json: { type: 'boolean' } });
        const algs = values.alg ?? [...services.config.keys.algorithms];
        for (const a of algs) {
          if (!services.config.keys.algorithms.includes(a as KeyAlg)) {
            throw new UsageError(`--alg ${a}: must be one of ${services.config.keys.algorithms.join(', ')}`);
          }
        }
        await ensureSigningKeys(services.store, services.config);
        const kids = await rotateSigningKeys(services.store, services.config, algs as KeyAlg[]);
        await services.events.record({ type: 'keys.rotated', details: { kids, via: 'cli' } });
        if (values.json) json({ rotated: kids });
        else print(`new active key(s): ${kids.join(', ')}\nretired keys stay in the JWKS until the tokens they signed have expired; running servers pick the new keys up within ${services.config.keys.refreshSeconds} s`);
        break;
      }
      default:
        throw new UsageError(`unknown command: ${argv.join(' ')}`);
    }
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    if (err instanceof UsageError) return { code: 2, stdout, stderr: `latchkey: ${err.message}\n${err.message.startsWith('unknown command') ? `\n${USAGE}\n` : ''}` };
    if (err instanceof AppError && err.expose) return { code: 1, stdout, stderr: `latchkey: ${err.message}\n` };
    services.log.error({ err }, 'command failed');
    return { code: 1, stdout, stderr: `latchkey: the command failed: ${(err as Error).message}\n` };
  }
}
