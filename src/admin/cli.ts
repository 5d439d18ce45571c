#!/usr/bin/env node
/**
 * `latchkey` — administer clients, users and keys. Help and usage errors are answered from the command table
 * alone, at once; only a command to run loads the configuration, the database and the server's code.
 */
import path from 'node:path';
import { readCommandLine } from './command-table.ts';

async function main(argv: string[]): Promise<number> {
  const line = readCommandLine(argv);
  if (!('kind' in line)) {
    process.stdout.write(line.stdout);
    process.stderr.write(line.stderr);
    return line.code;
  }
  const { runCli } = await import('./run-cli.ts');
  return runCli(absoluteFiles(argv, line), line.name);
}

/**
 * The file of `export --out` and `import` as an absolute path: on the embedded database a running server
 * runs the command, in its own working directory.
 */
function absoluteFiles(argv: string[], line: { name: string; values: Record<string, unknown>; operand: string | undefined }): string[] {
  const file = line.name === 'export' ? line.values.out : line.name === 'import' ? line.operand : undefined;
  if (typeof file !== 'string' || path.isAbsolute(file)) return argv;
  const absolute = path.resolve(file);
  return argv.map((a) => (a === file ? absolute : a === `--out=${file}` ? `--out=${absolute}` : a));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`latchkey: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
