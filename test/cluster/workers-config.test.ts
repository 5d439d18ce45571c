/**
 * The `server.workers` setting (LATCHKEY_WORKERS): 1 by default, a whole number from 1 to 64 or `auto`,
 * and more than one only with PostgreSQL; `auto` is one worker per core on PostgreSQL, one on the embedded
 * database.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { workerCount } from '../../src/workers.ts';

const PG = { LATCHKEY_DATABASE_URL: 'postgres://latchkey@db.internal:5432/latchkey' };

describe('server.workers', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-workers-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is 1 by default: one process, as before', () => {
    const config = loadConfig({ env: {} });
    assert.equal(config.server.workers, 1);
    assert.equal(workerCount(config), 1);
  });

  it('takes a whole number or auto from LATCHKEY_WORKERS on PostgreSQL; auto is one worker per core', () => {
    assert.equal(workerCount(loadConfig({ env: { ...PG, LATCHKEY_WORKERS: '4' } })), 4);
    assert.equal(workerCount(loadConfig({ env: { ...PG, LATCHKEY_WORKERS: '64' } })), 64);
    const auto = loadConfig({ env: { ...PG, LATCHKEY_WORKERS: 'auto' } });
    assert.equal(auto.server.workers, 'auto');
    assert.equal(workerCount(auto), Math.min(64, os.availableParallelism()));
  });

  it('refuses anything else, naming the variable or the setting', () => {
    const refused = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(() => loadConfig({ env: { ...PG, ...env } }), (err: unknown) => err instanceof ConfigError && pattern.test(err.message));
    for (const value of ['two', '1.5', '-1', 'Auto', '2x']) refused({ LATCHKEY_WORKERS: value }, /LATCHKEY_WORKERS: must be a whole number or auto/);
    for (const value of ['0', '65', '1000']) refused({ LATCHKEY_WORKERS: value }, /server\.workers: must be a whole number from 1 to 64, or auto/);
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'server:\n  workers: "many"\n');
    refused({ LATCHKEY_CONFIG: file }, /server\.workers: must be a whole number from 1 to 64, or auto/);
  });

  it('refuses more than one worker on the embedded database, which belongs to one process; auto runs one there', () => {
    assert.throws(() => loadConfig({ env: { LATCHKEY_WORKERS: '2' } }), (err: unknown) =>
      err instanceof ConfigError && /server\.workers: 2 worker processes need PostgreSQL \(set LATCHKEY_DATABASE_URL\)/.test(err.message));
    const file = path.join(dir, 'three.yaml');
    writeFileSync(file, 'server:\n  workers: 3\n');
    assert.throws(() => loadConfig({ env: { LATCHKEY_CONFIG: file } }), /server\.workers: 3 worker processes need PostgreSQL/);
    assert.equal(workerCount(loadConfig({ env: { LATCHKEY_WORKERS: '1' } })), 1);
    assert.equal(workerCount(loadConfig({ env: { LATCHKEY_WORKERS: 'auto' } })), 1);
  });
});
