/**
 * What a page render costs (issue 14 part 6): `node --import tsx bench/templates.ts [--renders 2000]`.
 * Renders the sign-in and consent pages through createRenderer() as the server does (env test: templates
 * cached), and for comparison with a renderer that compiles on every render (env development), and times
 * the start-up precompilation of every template. Prints µs per render; CPU-bound and single-threaded, so
 * a busy machine inflates all rows alike.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.ts';
import { createRenderer, precompileTemplates, type Render } from '../src/http/render.ts';
import { withLanguage } from '../src/i18n.ts';

const { values } = parseArgs({ options: { renders: { type: 'string', default: '2000' } } });
const renders = Number(values.renders);

const env = { LATCHKEY_ISSUER: 'http://127.0.0.1:9', LATCHKEY_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64url'), LATCHKEY_COOKIE_KEYS: Buffer.alloc(32, 2).toString('base64url') };
const config = (mode: string) => loadConfig({ env: { ...env, LATCHKEY_ENV: mode } });

const pages: [string, Record<string, unknown>][] = [
  ['interaction/login.njk', { reauth: false, remember: false, uid: 'u'.repeat(21), csrf: 'c'.repeat(43), clientName: 'Bench Web', signUp: true, email: '' }],
  ['interaction/consent.njk', { uid: 'u'.repeat(21), csrf: 'c'.repeat(43), clientName: 'Bench Web', email: 'bench-1@example.com', scopes: ['Your email address'] }],
];

function time(render: Render, template: string, vars: Record<string, unknown>, n: number): number {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) withLanguage('en', () => render(template, vars));
  return ((performance.now() - t0) * 1000) / n;
}

const cached = createRenderer(config('test'));
const uncached = createRenderer(config('development'));
for (const [template, vars] of pages) {
  const t0 = performance.now();
  withLanguage('en', () => cached(template, vars));
  const first = (performance.now() - t0) * 1000;
  time(cached, template, vars, 200); // warm-up (JIT)
  const hot = time(cached, template, vars, renders);
  const cold = time(uncached, template, vars, Math.max(20, renders / 20));
  process.stdout.write(`${template}: first render (compiles) ${first.toFixed(0)} µs; cached ${hot.toFixed(0)} µs per render; compiled every render (development) ${cold.toFixed(0)} µs\n`);
}
for (const [what, names] of [['the sign-in flow\'s (what production compiles at start-up)', ['layout.njk', '_csrf.njk', '_language-picker.njk', 'interaction', 'errors']], ['all', undefined]] as const) {
  const fresh = createRenderer(config('test'));
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const count = precompileTemplates(fresh, names);
  process.stdout.write(`precompiling ${what} ${count} templates: ${(performance.now() - t0).toFixed(0)} ms, V8 heap +${((process.memoryUsage().heapUsed - heap0) / 1024 / 1024).toFixed(1)} MB\n`);
}
