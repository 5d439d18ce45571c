import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { CommandSpec } from '../../src/admin/command-line.ts';
import { COMMANDS } from '../../src/admin/command-table.ts';
import { loadConfig } from '../../src/config.ts';
import { AUTH_METHODS, GRANT_TYPES, ID_TOKEN_ALGS } from '../../src/oidc/clients.ts';
import { LEVELS } from '../../src/security/level.ts';
import { ROLES } from '../../src/store/users.ts';
import { projectRoot } from '../../src/paths.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// Help and usage errors are answered before the configuration or the database is read: a data directory
// of their own shows that nothing was opened.
const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-cli-help-'));

/** Runs `latchkey …args` from source (the same Node that runs this test), as `npm run cli -- …args` does. */
function cli(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LATCHKEY_') && !k.startsWith('NODE_TEST')) env[k] = v;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/admin/cli.ts', ...args], {
    cwd: projectRoot, env: { ...env, LATCHKEY_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000,
  });
  const run: Run = { code: null, stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (run.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (run.stderr += s));
  return new Promise((resolve) => child.once('close', (code) => resolve({ ...run, code })));
}

/** Runs every argument list, a few processes at a time (each costs about a second of CPU). */
async function all(lists: string[][]): Promise<Run[]> {
  const runs: Run[] = new Array(lists.length);
  let next = 0;
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < lists.length) {
      const i = next++;
      runs[i] = await cli(lists[i]!);
    }
  }));
  return runs;
}

const flat = (s: string) => s.replace(/\s+/g, ' ');
const table: Readonly<Record<string, CommandSpec>> = COMMANDS;
const names = Object.keys(table);

describe('latchkey --help, for every command of the table', () => {
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('<command> --help and -h print that command\'s usage, summary, operand and every option it accepts, and exit 0', async () => {
    const runs = await all(names.flatMap((name) => [[...name.split(' '), '--help'], [...name.split(' '), '-h']]));
    names.forEach((name, i) => {
      const [long, short] = [runs[2 * i]!, runs[2 * i + 1]!];
      assert.equal(long.code, 0, `${name} --help: exit ${long.code}: ${long.stderr}`);
      assert.equal(long.stderr, '');
      assert.deepEqual(short, long, `${name} -h is ${name} --help`);
      const spec = table[name]!;
      assert.ok(long.stdout.startsWith(`Usage: latchkey ${name}`), `${name}: ${long.stdout}`);
      assert.ok(flat(long.stdout).toLowerCase().includes(flat(spec.summary).toLowerCase()), `${name} says what it does`);
      if (spec.operand) assert.match(long.stdout, new RegExp(`^Usage: latchkey ${name} ${spec.operand.name}`));
      for (const [key, option] of Object.entries(spec.options)) {
        const line = new RegExp(`^  --${key}${option.type === 'string' ? ' \\S+' : ''} +\\S`, 'm');
        assert.match(long.stdout, line, `${name} --help lists --${key}`);
        assert.ok(flat(long.stdout).includes(flat(option.help)), `${name} --help explains --${key}`);
      }
      assert.match(long.stdout, /^ {2}-h, --help +show this help$/m);
    });
    assert.deepEqual(readdirSync(dataDir), [], 'no database was opened for help');
  });

  it('lists the values the operations accept (the table writes them out so that --help loads no server code)', () => {
    const help = (command: string, option: string) => table[command]!.options[option]!.help;
    assert.ok(help('clients add', 'grant-type').startsWith(`one of ${GRANT_TYPES.join(', ')} (`));
    assert.ok(help('clients add', 'auth-method').includes(`one of ${AUTH_METHODS.join(', ')} (`));
    assert.ok(help('clients add', 'id-token-alg').includes(`one of ${ID_TOKEN_ALGS.join(', ')} (`));
    assert.ok(help('clients add', 'minimum-acr').endsWith(`one of ${LEVELS.join(', ')}`));
    assert.ok(help('keys rotate', 'alg').includes(`one of ${loadConfig({ env: {} }).keys.algorithms.join(', ')} (`));
    for (const [command, option] of [['users roles', 'grant'], ['users roles', 'revoke'], ['users invite', 'role']] as const) {
      assert.ok(help(command, option).includes(`one of ${ROLES.join(', ')}`), `${command} --${option}`);
    }
  });

  it('names the options a command really takes: clients add --help shows the flags and their values', async () => {
    const [help] = await all([['clients', 'add', '--help']]);
    assert.match(help!.stdout, /^Usage: latchkey clients add --name N \[options\]$/m);
    assert.match(help!.stdout, /^ {2}--redirect-uri U +where users return after signing in/m);
    assert.match(help!.stdout, /^ {2}--no-pkce +let an older server app skip PKCE/m);
    assert.match(flat(help!.stdout), /--grant-type T one of authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code/);
  });

  it('latchkey --help, help, a group\'s --help and help <command> are generated from the same table', async () => {
    const [top, word, group, helpOf, command] = await all([['--help'], ['help'], ['clients', '--help'], ['help', 'keys', 'rotate'], ['keys', 'rotate', '--help']]);
    for (const r of [top!, word!, group!, helpOf!]) assert.equal(r.code, 0, r.stderr);
    assert.equal(word!.stdout, top!.stdout);
    for (const name of names) assert.match(top!.stdout, new RegExp(`^ {2}${name}\\b`, 'm'), `latchkey --help lists ${name}`);
    assert.match(top!.stdout, /Run "latchkey <command> --help" for a command's options/);
    assert.match(group!.stdout, /^Usage: latchkey clients <subcommand>/);
    for (const name of names.filter((n) => n.startsWith('clients '))) assert.match(group!.stdout, new RegExp(`^ {2}${name}\\b`, 'm'));
    assert.doesNotMatch(group!.stdout, /^ {2}(users|keys) /m);
    assert.equal(helpOf!.stdout, command!.stdout);
  });

  it('an unknown option of any command is refused clearly, pointing to that command\'s --help, with exit code 2', async () => {
    const runs = await all(names.map((name) => [...name.split(' '), '--no-such-option']));
    names.forEach((name, i) => {
      const r = runs[i]!;
      assert.equal(r.code, 2, `${name} --no-such-option: exit ${r.code}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `latchkey: unknown option --no-such-option for "${name}"\nRun "latchkey ${name} --help" for its usage and options.\n`);
    });
    const [short, missingValue, group] = await all([['users', 'list', '-x'], ['clients', 'add', '--name'], ['keys']]);
    assert.equal(short!.code, 2);
    assert.match(short!.stderr, /^latchkey: unknown option -x for "users list"\n/);
    assert.equal(missingValue!.code, 2);
    assert.match(missingValue!.stderr, /--name/);
    assert.match(missingValue!.stderr, /Run "latchkey clients add --help"/);
    assert.equal(group!.code, 2);
    assert.match(group!.stderr, /^latchkey: keys needs a subcommand: list, rotate, retire\n/);
    assert.deepEqual(readdirSync(dataDir), [], 'no database was opened for a usage error');
  });
});
