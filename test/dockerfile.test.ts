/**
 * The image must carry everything the server reads from the project folder at run time: each folder the
 * code joins to `projectRoot` is copied into the final stage (the German strings were once left out). No
 * container engine runs here, so this reads the Dockerfile; it does not build it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../src/paths.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sources(file) : name.endsWith('.ts') ? [file] : [];
  });
}

/** The COPY sources of the Dockerfile's last stage (`COPY --from=…` copies what the build stage made). */
function finalStageCopies(): string[] {
  const text = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
  const last = text.split(/^FROM /m).at(-1)!;
  return [...last.matchAll(/^COPY\s+(--from=\S+\s+)?(\S+)\s+\S+$/gm)].map((m) => (m[1] ? `dist-of:${m[2]}` : m[2]!.replace(/^\.\//, '').replace(/\/$/, '')));
}

describe('the Dockerfile', () => {
  it('copies every folder the server reads at run time into the final image', () => {
    const read = new Set<string>();
    for (const file of sources(path.join(projectRoot, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/projectRoot, '([^']+)'/g)) read.add(m[1]!);
    }
    assert.ok(read.has('views') && read.has('locales'), 'the scan finds the folders the server reads');
    const copied = finalStageCopies();
    // node_modules comes from the build stage; src is only read for data files copied one by one.
    const missing = [...read].filter((dir) => dir !== 'node_modules' && dir !== 'src' && !copied.includes(dir));
    assert.deepEqual(missing, [], `COPY these into the final stage: ${missing.join(', ')}`);
    assert.ok(copied.includes('dist-of:/app/node_modules'), 'node_modules from the build stage');
    for (const data of copied.filter((c) => c.startsWith('src/'))) assert.ok(statSync(path.join(projectRoot, data)).isFile(), `${data} exists`);
  });
});
