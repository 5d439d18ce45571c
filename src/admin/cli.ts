#!/usr/bin/env node
/**
 * `latchkey` — administer clients, users and keys. Help and usage errors are answered from the command table
 * alone, at once; only a command to run loads the configuration, the database and the server's code.
 */
import { readCommandLine } from './command-table.ts';

async function main(argv: string[]): Promise<number> {
  const line = readCommandLine(argv);
  if (!('kind' in line)) {
    process.stdout.write(line.stdout);
    process.stderr.write(line.stderr);
    return line.code;
  }
  const { runCli } = await import('./run-cli.ts');
  return runCli(argv, line.name);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`latchkey: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
