/**
 * Import cycles in src/: prints each one and exits 1 when there is any (`npm run check:cycles`).
 * Type-only imports (`import type`, `export type … from`) are left out: they vanish at run time and cannot
 * make modules wait for each other. A dependency-free stand-in for `madge --circular`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return files(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** The relative modules a file imports at run time. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'(\.[^']+)'/gms;
  for (const m of text.matchAll(statement)) {
    if (m[2]) continue; // import type / export type
    const names = m[3]!;
    // import { type A, type B } from: only types.
    const braces = /^\{([^}]*)\}$/.exec(names.trim());
    if (braces && braces[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
    found.push(path.resolve(path.dirname(file), m[4]!));
  }
  for (const m of text.matchAll(/^\s*import\s+'(\.[^']+)'/gm)) found.push(path.resolve(path.dirname(file), m[1]!));
  return found;
}

const graph = new Map(files(root).map((f) => [f, imports(f)]));

// Tarjan's strongly connected components: every component of more than one module is a cycle.
let index = 0;
const indices = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const cycles: string[][] = [];
function visit(v: string) {
  indices.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!indices.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v)!, low.get(w)!));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!));
  }
  if (low.get(v) === indices.get(v)) {
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component);
  }
}
for (const v of graph.keys()) if (!indices.has(v)) visit(v);

const rel = (f: string) => path.relative(root, f);
if (cycles.length === 0) {
  console.log(`no import cycles in src/ (${graph.size} modules)`);
} else {
  for (const c of cycles) console.log(`cycle: ${c.map(rel).sort().join(', ')}`);
  process.exitCode = 1;
}
