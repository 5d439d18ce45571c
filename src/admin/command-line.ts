/**
 * The `latchkey` command line read against its table of commands. Each command declares its options once;
 * the parser, the usage errors and every `--help` text are made from that declaration, so the help cannot
 * drift from what the command accepts.
 */
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

const PROGRAM = 'latchkey';
const WIDTH = 100;
const HELP = new Set(['--help', '-h']);

export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    /** The command (or group) whose `--help` the message points to; none for an unknown command, which gets the full usage. */
    readonly command?: string,
  ) {
    super(message);
  }
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** The placeholder of a string option's value in the help (`U` in `--redirect-uri U`). */
  readonly value?: string;
  readonly help: string;
  /** Required: `true`, or why (said when it is missing). */
  readonly required?: true | string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec {
  readonly summary: string;
  /** Its one positional argument, if it takes one (always required). */
  readonly operand?: { readonly name: string; readonly help: string };
  readonly options: OptionSpecs;
}

export type CommandTable = Readonly<Record<string, CommandSpec>>;

type Value<S extends OptionSpec> = S['type'] extends 'boolean' ? boolean : string;
type Values1<S extends OptionSpec> = S['multiple'] extends true ? Value<S>[] : Value<S>;
/** What a command's `run` gets: required options are there, the others may be undefined. */
export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O]: O[K]['required'] extends true | string ? Values1<O[K]> : Values1<O[K]> | undefined;
};

/** A command line that names a command and satisfies its declaration. */
export interface ParsedCommand {
  kind: 'run';
  name: string;
  values: Record<string, unknown>;
  operand: string | undefined;
}

export type CommandLine = { kind: 'help'; text: string } | ParsedCommand;

/** Reads `argv` against the table: a help text to print, or a command to run. Throws UsageError. */
export function parseCommandLine(table: CommandTable, argv: readonly string[]): CommandLine {
  const [first, second] = argv;
  if (first === undefined || HELP.has(first) || (first === 'help' && argv.length === 1)) return { kind: 'help', text: usage(table) };
  // `help clients add` is `clients add --help`.
  if (first === 'help') return parseCommandLine(table, [...argv.slice(1), '--help']);
  const pair = second !== undefined && !second.startsWith('-') ? `${first} ${second}` : undefined;
  const name = pair && Object.hasOwn(table, pair) ? pair : Object.hasOwn(table, first) ? first : undefined;
  if (!name) {
    const members = group(table, first);
    if (!members.length || (second !== undefined && !HELP.has(second))) throw new UsageError(`unknown command: ${argv.join(' ')}`);
    if (second !== undefined) return { kind: 'help', text: groupHelp(table, first) };
    throw new UsageError(`${first} needs a subcommand: ${members.map((m) => m.slice(first.length + 1)).join(', ')}`, first);
  }
  const spec = table[name]!;
  const args = argv.slice(name.split(' ').length);
  const options = parseArgsOptions(spec.options);

  // A first, lenient pass finds --help anywhere (before `--`) and names an unknown option plainly.
  const { tokens } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === 'option' && t.name === 'help')) return { kind: 'help', text: commandHelp(name, spec) };
  const unknown = tokens.find((t) => t.kind === 'option' && !Object.hasOwn(options, t.name));
  if (unknown?.kind === 'option') throw new UsageError(`unknown option ${unknown.rawName} for "${name}"`, name);

  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: !!spec.operand, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, name);
  }
  const [operand, extra] = parsed.positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument: ${extra}`, name);
  if (spec.operand && operand === undefined) throw new UsageError(`${name} needs a ${spec.operand.name}`, name);
  for (const [key, option] of Object.entries(spec.options)) {
    if (option.required && (parsed.values as Record<string, unknown>)[key] === undefined) {
      throw new UsageError(`--${key} is required${typeof option.required === 'string' ? ` (${option.required})` : ''}`, name);
    }
  }
  return { kind: 'run', name, values: parsed.values, operand };
}

/** What standard error says for a usage error: the message, then where to read more. */
export function usageErrorText(table: CommandTable, err: UsageError): string {
  if (err.command === undefined) return `${PROGRAM}: ${err.message}\n\n${usage(table)}`;
  return `${PROGRAM}: ${err.message}\nRun "${PROGRAM} ${err.command} --help" for its usage and options.\n`;
}

/** The whole CLI: every command's synopsis and summary. */
export function usage(table: CommandTable): string {
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Commands:',
    columns(Object.entries(table).map(([name, spec]) => [synopsis(name, spec), spec.summary])),
    `Run "${PROGRAM} <command> --help" for a command's options.`,
    '',
    ...wrap('The configuration (config/default.yaml, LATCHKEY_CONFIG, LATCHKEY_* variables) is the server\'s, so the CLI acts on the same database.', WIDTH),
  ].join('\n') + '\n';
}

function groupHelp(table: CommandTable, name: string): string {
  return [
    `Usage: ${PROGRAM} ${name} <subcommand> [options]`,
    '',
    'Subcommands:',
    columns(group(table, name).map((member) => [synopsis(member, table[member]!), table[member]!.summary])),
    `Run "${PROGRAM} ${name} <subcommand> --help" for a subcommand's options.`,
  ].join('\n') + '\n';
}

function commandHelp(name: string, spec: CommandSpec): string {
  const lines = [`Usage: ${PROGRAM} ${synopsis(name, spec)}`, '', ...wrap(`${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`, WIDTH), ''];
  if (spec.operand) lines.push('Arguments:', columns([[spec.operand.name, spec.operand.help]]));
  const options = Object.entries(spec.options).map(([key, o]): [string, string] => [
    `--${key}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`,
    `${o.help}${o.required ? ' (required)' : ''}${o.multiple ? ' (repeatable)' : ''}`,
  ]);
  lines.push('Options:', columns([...options, ['-h, --help', 'show this help']]));
  return lines.join('\n');
}

/** `clients add --name N [options]`: the operand and the required options; the rest are in --help. */
function synopsis(name: string, spec: CommandSpec): string {
  const required = Object.entries(spec.options).filter(([, o]) => o.required).map(([key, o]) => `--${key}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`);
  const optional = Object.values(spec.options).some((o) => !o.required);
  return [name, spec.operand?.name, ...required, optional ? '[options]' : undefined].filter(Boolean).join(' ');
}

const group = (table: CommandTable, name: string) => Object.keys(table).filter((k) => k.startsWith(`${name} `));

/** Two columns, the second wrapped to the width and indented under itself; a long first cell gets a line of its own. */
function columns(rows: [string, string][]): string {
  const left = Math.max(0, ...rows.map(([l]) => l.length).filter((n) => n <= 40));
  return rows.map(([l, r]) => {
    const [firstLine = '', ...rest] = wrap(r, WIDTH - left - 4);
    const head = l.length > left ? [`  ${l}`, `  ${''.padEnd(left)}  ${firstLine}`] : [`  ${l.padEnd(left)}  ${firstLine}`];
    return [...head, ...rest.map((line) => `  ${''.padEnd(left)}  ${line}`)].join('\n');
  }).join('\n') + '\n';
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

function parseArgsOptions(specs: OptionSpecs): ParseArgsOptionsConfig {
  return Object.fromEntries(Object.entries(specs).map(([key, o]) => [key, { type: o.type, ...(o.multiple ? { multiple: true } : {}) }]));
}
