/**
 * Serves the phone app (the installable web app in `app/`, docs/mobile-app-protocol.md) at `/app/`.
 *
 * Its three screens (`/app/`, `/app/pair`, `/app/prompt`) are one page, `index.html`; the other files are
 * served by their exact name, which must match a safe pattern (no `..`, no `%`, at most one folder), so a
 * path trick finds nothing. `/app/api/` is the server's API (api.ts): this middleware leaves it alone.
 *
 * The app's CSP is the site's (http/headers.ts) with its service worker and manifest allowed by name, and
 * images over https, for the logos of the apps a prompt names. The HTML and the scripts are `no-cache`
 * (revalidated by ETag), so the page, its modules and the service worker never mix versions.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Context, Next } from 'koa';
import { AppError } from '../errors.ts';
import { cspDirectives } from '../http/headers.ts';
import { projectRoot } from '../paths.ts';

const root = path.join(projectRoot, 'app');

/** The paths of the app's screens: every one is index.html, and the script picks the screen. */
const SCREENS = new Set(['/app/', '/app/pair', '/app/prompt']);

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.png': 'image/png',
};

/** A file's name under app/: lower-case words, at most one folder, one of the types above. */
const NAME = /^(?:[a-z0-9][a-z0-9-]*\/)?[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:html|js|css|webmanifest|png)$/;

/** The site's CSP, with what an installable app needs and images over https (the logos of other apps). */
export const appCsp = (): string =>
  [
    ...cspDirectives(undefined).map((d) => (d.startsWith('img-src ') ? "img-src 'self' data: https:" : d)),
    "worker-src 'self'",
    "manifest-src 'self'",
  ].join('; ');

interface AppFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** The name under app/ a request asks for, or undefined when it is not one of the app's files. */
function fileName(requestPath: string): string | undefined {
  if (SCREENS.has(requestPath)) return 'index.html';
  const name = requestPath.slice('/app/'.length);
  return NAME.test(name) ? name : undefined;
}

async function load(name: string): Promise<AppFile | undefined> {
  const type = TYPES[path.extname(name)];
  if (!type) return undefined;
  try {
    const body = await readFile(path.join(root, name));
    return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
  } catch {
    return undefined;
  }
}

export function appFiles() {
  const cache = new Map<string, AppFile>();
  const csp = appCsp();
  return async function serveAppFiles(ctx: Context, next: Next) {
    const reading = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (ctx.path === '/app' && reading) return ctx.redirect('/app/');
    if (!reading || !ctx.path.startsWith('/app/') || ctx.path === '/app/api' || ctx.path.startsWith('/app/api/')) return next();
    const name = fileName(ctx.path);
    const file = name ? (cache.get(name) ?? (await load(name))) : undefined;
    if (!name || !file) throw new AppError('not_found', 404, 'There is nothing at this address.');
    cache.set(name, file);
    ctx.set('Content-Security-Policy', csp);
    ctx.set('Cache-Control', file.type === 'image/png' ? 'public, max-age=86400' : 'no-cache');
    ctx.type = file.type;
    ctx.etag = file.etag;
    ctx.body = file.body;
    if (ctx.fresh) ctx.status = 304;
  };
}
