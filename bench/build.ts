/**
 * Compiles src/ into dist/ (what `npm run build` does), so the server under test is the current code.
 * tsc emits even when the tree has type errors (someone's edit in progress); those come back as a warning.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../src/paths.ts';

export const serverEntry = path.join(projectRoot, 'dist', 'src', 'main.js');

/** Builds dist/; returns tsc's diagnostics when there were any, undefined when the build was clean. */
export async function buildServer(): Promise<string | undefined> {
  const tsc = path.join(projectRoot, 'node_modules', '.bin', 'tsc');
  const started = Date.now();
  try {
    await promisify(execFile)(tsc, ['-p', 'tsconfig.build.json'], { cwd: projectRoot });
    return undefined;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || e.message;
    const emitted = existsSync(serverEntry) && statSync(serverEntry).mtimeMs >= started - 1000;
    if (!emitted) throw new Error(`npm run build failed:\n${output}`);
    return output;
  }
}
