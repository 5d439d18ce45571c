/** Serves the small set of files under views/assets at /assets/. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Context, Next } from 'koa';
import type { Config } from '../config.ts';
import { projectRoot, viewsDir } from '../paths.ts';
import { themeCss } from './theme.ts';

const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon' };
const root = path.join(viewsDir, 'assets');

/** Browser libraries served from our own origin (no CDN), by the name the pages use. */
const VENDOR: Readonly<Record<string, string>> = {
  'vendor/simplewebauthn-browser.js': path.join(projectRoot, 'node_modules', '@simplewebauthn', 'browser', 'dist', 'bundle', 'index.umd.min.js'),
};

export function assets(config: Config) {
  const cache = new Map<string, Buffer>();
  const theme = themeCss(config);
  return async function serveAssets(ctx: Context, next: Next) {
    if (!ctx.path.startsWith('/assets/') || (ctx.method !== 'GET' && ctx.method !== 'HEAD')) return next();
    if (ctx.path === '/assets/theme.css') {
      ctx.type = TYPES['.css']!;
      ctx.set('Cache-Control', 'public, max-age=300');
      ctx.body = theme;
      return;
    }
    const name = ctx.path.slice('/assets/'.length);
    const type = TYPES[path.extname(name)];
    const vendor = Object.hasOwn(VENDOR, name) ? VENDOR[name] : undefined;
    if (!type || (!vendor && !/^[a-z0-9][a-z0-9._-]*$/i.test(name))) return next();
    let body = cache.get(name);
    if (!body) {
      try {
        body = await readFile(vendor ?? path.join(root, name));
      } catch {
        return next();
      }
      cache.set(name, body);
    }
    ctx.type = type;
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = body;
  };
}
