/**
 * Two start-up tunings of issue 14: libuv's thread pool sized so argon2 never takes every thread from the
 * WebCrypto signatures (src/threadpool.ts), and the sign-in pages compiled at start in production
 * (src/http/render.ts `precompileTemplates`).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import nunjucks from 'nunjucks';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { createRenderer, precompileTemplates } from '../../src/http/render.ts';
import { projectRoot } from '../../src/paths.ts';
import { SPARE_THREADS, sizeThreadPool } from '../../src/threadpool.ts';

const production = {
  LATCHKEY_ENV: 'production',
  LATCHKEY_ISSUER: 'https://login.example.com',
  LATCHKEY_DATABASE_URL: 'postgres://latchkey:pw@db.internal:5432/latchkey',
  LATCHKEY_ENCRYPTION_KEY: 'k7Qp2vR9xW4mZ8nB3cF6hJ1tY5uL0aS2dG7e',
  LATCHKEY_COOKIE_KEYS: 'Xy3Nq8Wm2Kp7Rv5Tz1Bc9Df4Gh6Jl0Mn8Pq2Rs',
  LATCHKEY_SMTP_URL: 'smtp://latchkey:pw@smtp.example.com:587',
  LATCHKEY_SMS_PROVIDER: 'webhook',
  LATCHKEY_SMS_WEBHOOK_URL: 'https://sms.internal/send',
  LATCHKEY_SMS_WEBHOOK_SECRET: 'Mq4Zt8Lw2Xc6Vb0Nr5Ks9Jd3Hf7Gp1Ty4E',
};

describe('libuv thread pool', () => {
  it('keeps libuv\'s 4 threads when argon2\'s concurrency leaves two of them free', () => {
    const env: NodeJS.ProcessEnv = {};
    assert.equal(sizeThreadPool({ argon2: { concurrency: 2 } } as never, env), 4);
    assert.equal(env.UV_THREADPOOL_SIZE, undefined);
  });

  it('grows the pool to argon2\'s concurrency plus two spare threads for the signatures', () => {
    const env: NodeJS.ProcessEnv = {};
    assert.equal(sizeThreadPool({ argon2: { concurrency: 6 } } as never, env), 6 + SPARE_THREADS);
    assert.equal(env.UV_THREADPOOL_SIZE, '8');
  });

  it('leaves an operator\'s own UV_THREADPOOL_SIZE alone, and ignores one that is not a whole number', () => {
    const own: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '16' };
    assert.equal(sizeThreadPool({ argon2: { concurrency: 6 } } as never, own), 16);
    assert.equal(own.UV_THREADPOOL_SIZE, '16');
    const junk: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: 'lots' };
    assert.equal(sizeThreadPool({ argon2: { concurrency: 6 } } as never, junk), 8);
    assert.equal(junk.UV_THREADPOOL_SIZE, '8');
  });
});

describe('templates compiled at start', () => {
  const interactionPages = readdirSync(path.join(projectRoot, 'views', 'interaction'), { recursive: true })
    .filter((f) => String(f).endsWith('.njk')).length;

  it('compiles every page of a folder into the renderer\'s cache, and they still render', () => {
    const render = createRenderer(loadConfig({ env: {} }));
    assert.ok(interactionPages > 5);
    assert.equal(precompileTemplates(render, ['interaction']), interactionPages);
    assert.match(render('errors/error.njk', { status: 404, message: 'Not here' }), /Not here/);
  });

  it('in production the sign-in flow is compiled when the renderer is made; elsewhere nothing is, until first shown', () => {
    const compiled: string[] = [];
    const original = nunjucks.Environment.prototype.getTemplate;
    nunjucks.Environment.prototype.getTemplate = function (this: nunjucks.Environment, ...args: Parameters<typeof original>) {
      compiled.push(String(args[0]));
      return original.apply(this, args);
    } as typeof original;
    try {
      createRenderer(loadConfig({ env: {} }));
      assert.equal(compiled.length, 0, `development and tests compile on first use: ${compiled.join(', ')}`);
      createRenderer(loadConfig({ env: production }));
    } finally {
      nunjucks.Environment.prototype.getTemplate = original;
    }
    for (const page of ['layout.njk', 'interaction/login.njk', 'interaction/consent.njk', 'errors/error.njk']) assert.ok(compiled.includes(page), `${page} compiled at start: ${compiled.join(', ')}`);
    assert.equal(compiled.filter((t) => t.startsWith('interaction/')).length, interactionPages);
  });
});
