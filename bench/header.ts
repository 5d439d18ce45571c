/** The first lines of every bench report: the machine, the OS, Node and the commit measured, and when. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { projectRoot } from '../src/paths.ts';

/** Read-only git: --no-optional-locks keeps `git status` from refreshing the index. */
function git(...args: string[]): string | undefined {
  try {
    return execFileSync('git', ['--no-optional-locks', ...args], { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (pretty) return `${pretty} (${os.type()} ${os.release()})`;
  } catch {
    // not Linux, or no os-release: the kernel alone
  }
  return `${os.type()} ${os.release()}`;
}

export function header(now = new Date()): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim().replace(/\s+/g, ' ') ?? 'unknown CPU';
  const hash = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain', '--untracked-files=no');
  const commit = hash ? `${hash}${dirty ? ' + uncommitted changes' : ''}` : 'unknown (not a git checkout)';
  return [
    'Latchkey bench',
    `   machine: ${model}, ${cpus.length} cores (os.availableParallelism ${os.availableParallelism()}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GB RAM`,
    `   OS: ${osName()}`,
    `   Node: ${process.version}`,
    `   commit: ${commit}`,
    `   date: ${now.toISOString().replace(/\.\d+Z$/, 'Z')}`,
    '',
  ].join('\n');
}
