/**
 * The phone app's files at /app/ (src/push/app-files.ts), over HTTP: every screen is index.html, every
 * file has its type, the app's CSP allows its worker and manifest and nothing inline, the worker and the
 * page are revalidated, and names outside the app (path tricks, /app/api/) are not its to answer.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const APP_DIR = path.resolve(import.meta.dirname, '..', '..', 'app');

/**
 * A GET with the path and headers sent exactly as written (fetch would normalise `%2e%2e` and `..`, and
 * adds `Cache-Control: no-cache` to a request with `If-None-Match`, which rules out a 304).
 */
function rawGet(server: TestServer, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.config.port, path: rawPath, method: 'GET', headers: { host: new URL(server.url).host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A PNG's width and height, after checking its signature and that IHDR comes first. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG signature');
  assert.equal(bytes.subarray(12, 16).toString('ascii'), 'IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/** Every file under app/, as its path under /app/. */
function appFiles(dir = APP_DIR, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(path.join(dir, name)).isDirectory() ? appFiles(path.join(dir, name), `${prefix}${name}/`) : [`${prefix}${name}`]));
}

const directives = (csp: string | null) => new Map((csp ?? '').split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));

describe('the phone app files at /app/', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const get = (p: string, init?: RequestInit) => fetch(`${server.url}${p}`, { redirect: 'manual', ...init });

  it('answers nothing outside the app: path tricks, unknown names and types are 404 and never a file from elsewhere', async () => {
    const tricks = [
      '/app/..%2fpackage.json', '/app/%2e%2e/', '/app/%2e%2e/package.json', '/app/%2E%2E%2Fpackage.json', '/app/icons/..%2f..%2fpackage.json',
      '/app/../package.json', '/app/icons/../../package.json', '/app/.%2e/package.json', '/app/%5c..%5cpackage.json',
      '/app/nope.js', '/app/notes.txt', '/app/.env', '/app/icons/', '/app/screens', '/app//sw.js', '/app/SW.JS', '/app/sw.js%00.png',
      '/app/a/b/c.js', '/app/index.html/', '/app/pair/', '/app/prompt/x',
      // Files of a type the app serves, outside app/:
      '/app/../views/assets/copy.js', '/app/icons/../../views/assets/copy.js', '/app/..%2fviews%2fassets%2fcopy.js', '/app/%2e%2e/views/assets/copy.js',
    ];
    for (const trick of tricks) {
      const res = await rawGet(server, trick);
      assert.ok(res.status === 404 || res.status === 400, `${trick}: ${res.status}`);
      assert.doesNotMatch(res.body, /"name": "latchkey"|devDependencies|data-copy/, trick);
      assert.doesNotMatch(res.headers['content-type'] ?? '', /javascript|manifest|png/, trick);
    }
  });

  it('leaves /app/api/ to the API: the file server never answers there', async () => {
    for (const p of ['/app/api/config', '/app/api/sw.js', '/app/api/', '/app/api', '/app/api/index.html']) {
      const res = await get(p, { headers: { accept: 'application/json' } });
      const text = await res.text();
      assert.doesNotMatch(text, /<script type="module"|addEventListener\('push'/, p);
      assert.doesNotMatch(res.headers.get('content-security-policy') ?? '', /worker-src/, `${p} has the app's CSP`);
    }
  });

  it('serves / does not serve by method: HEAD like GET, POST not at all', async () => {
    const head = await get('/app/sw.js', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type')!, /^text\/javascript/);
    const post = await get('/app/sw.js', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.notEqual(post.status, 200);
    assert.doesNotMatch(await post.text(), /addEventListener\('push'/);
  });

  it('serves every screen as the one page, with the app\'s CSP (worker and manifest, nothing inline, https logos), never cached unchecked', async () => {
    for (const screen of ['/app/', '/app/pair', '/app/prompt']) {
      const res = await get(screen);
      assert.equal(res.status, 200, screen);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const html = await res.text();
      assert.match(html, /<script type="module" src="\/app\/app\.js"><\/script>/);
      assert.match(html, /<link rel="manifest" href="\/app\/manifest\.webmanifest">/);
      assert.match(html, /<link rel="apple-touch-icon" href="\/app\/icons\/apple-touch-icon\.png">/);
      assert.match(html, /<meta name="theme-color"/);
      assert.match(html, /<meta name="viewport" content="width=device-width/);
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|<style/, 'no inline script or style');
      const csp = directives(res.headers.get('content-security-policy'));
      assert.deepEqual(csp.get('worker-src'), ["'self'"]);
      assert.deepEqual(csp.get('manifest-src'), ["'self'"]);
      assert.deepEqual(csp.get('script-src'), ["'self'"]);
      assert.deepEqual(csp.get('style-src'), ["'self'"]);
      assert.deepEqual(csp.get('img-src'), ["'self'", 'data:', 'https:']);
      assert.deepEqual(csp.get('connect-src'), ["'self'"]);
      assert.deepEqual(csp.get('frame-ancestors'), ["'none'"]);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    const bare = await get('/app');
    assert.equal(bare.status, 302);
    assert.equal(bare.headers.get('location'), '/app/');
  });

  it('keeps the rest of the site on its own CSP, without the app\'s additions', async () => {
    const csp = directives((await get('/assets/style.css')).headers.get('content-security-policy'));
    assert.equal(csp.get('worker-src'), undefined);
    assert.deepEqual(csp.get('img-src'), ["'self'", 'data:']);
  });

  it('serves the service worker and the modules as JavaScript, revalidated every time (ETag, 304)', async () => {
    for (const name of ['sw.js', 'app.js', 'device.js', 'strings.js', 'screens/prompt.js']) {
      const res = await get(`/app/${name}`);
      assert.equal(res.status, 200, name);
      assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8', name);
      assert.equal(res.headers.get('cache-control'), 'no-cache', name);
      assert.match(res.headers.get('content-security-policy')!, /worker-src 'self'/, name);
      const etag = res.headers.get('etag');
      assert.ok(etag, name);
      const again = await rawGet(server, `/app/${name}`, { 'if-none-match': etag });
      assert.equal(again.status, 304, name);
      assert.equal(again.body, '');
    }
    assert.equal((await get('/app/app.css')).headers.get('content-type'), 'text/css; charset=utf-8');
  });

  it('serves every file in app/ (no file there that the name pattern refuses)', async () => {
    for (const name of appFiles()) {
      const res = await get(`/app/${name}`);
      assert.equal(res.status, 200, `app/${name} is not served`);
      await res.arrayBuffer();
    }
  });

  it('serves a manifest that parses, scoped to /app/, with PNG icons of the sizes it states (192, 512 and maskable)', async () => {
    const res = await get('/app/manifest.webmanifest');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/manifest+json; charset=utf-8');
    const manifest = (await res.json()) as { name: string; short_name: string; start_url: string; scope: string; display: string; theme_color: string; background_color: string; icons: { src: string; sizes: string; type: string; purpose?: string }[] };
    assert.equal(manifest.name, 'Latchkey');
    assert.ok(manifest.short_name);
    assert.equal(manifest.start_url, '/app/');
    assert.equal(manifest.scope, '/app/');
    assert.equal(manifest.display, 'standalone');
    assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/i);
    assert.match(manifest.background_color, /^#[0-9a-f]{6}$/i);
    const sizes = new Set(manifest.icons.map((i) => `${i.sizes} ${i.purpose ?? 'any'}`));
    for (const needed of ['192x192 any', '512x512 any', '512x512 maskable']) assert.ok(sizes.has(needed), `an icon ${needed}`);
    for (const icon of [...manifest.icons, { src: '/app/icons/apple-touch-icon.png', sizes: '180x180', type: 'image/png' }]) {
      const file = await get(icon.src);
      assert.equal(file.status, 200, icon.src);
      assert.equal(file.headers.get('content-type'), 'image/png');
      assert.equal(icon.type, 'image/png');
      const { width, height } = pngSize(Buffer.from(await file.arrayBuffer()));
      assert.equal(`${width}x${height}`, icon.sizes, icon.src);
    }
  });
});
