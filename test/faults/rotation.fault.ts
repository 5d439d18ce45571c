/**
 * Fault: `latchkey keys rotate` (the CLI, on the shared database) while ID tokens are issued through nginx
 * and checked against every instance. A token is checked as an app does it: against the JWKS of an instance
 * (asked directly, fetched again once when the token's key is not in it), and its access token at that
 * instance's userinfo. No token may fail at any instance. `npm run fault:rotation`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { serverEntry } from '../../bench/build.ts';
import { childEnvironment } from '../../bench/server.ts';
import { basicAuth, signIn } from '../../bench/sign-in.ts';
import { projectRoot } from '../../src/paths.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

/** Instances look for rotated keys this often (keys.refreshSeconds): short, so the test is. */
const REFRESH_SECONDS = 5;

describe('key rotation under load (nginx, 3 instances, PostgreSQL)', () => {
  let cluster: TestCluster;
  let configDir: string;
  const redirectUri = 'http://127.0.0.1:9/callback';
  let web: Awaited<ReturnType<TestCluster['addClient']>> & { redirectUri: string };
  const users = [0, 1, 2].map((i) => ({ email: `rotation-${i}@example.com`, password: `rotation user ${i} password` }));

  before(async () => {
    configDir = mkdtempSync(path.join(tmpdir(), 'latchkey-rotation-'));
    const file = path.join(configDir, 'latchkey.yaml');
    writeFileSync(file, `keys:\n  refreshSeconds: ${REFRESH_SECONDS}\n`);
    cluster = await startTestCluster({ env: { LATCHKEY_CONFIG: file } });
    for (const u of users) await cluster.addUser(u);
    web = { ...(await cluster.addClient({ name: 'Rotation web', redirectUris: [redirectUri] })), redirectUri };
  });
  after(async () => {
    await cluster?.stop();
    rmSync(configDir, { recursive: true, force: true });
  });

  it('never issues a token that an instance cannot verify', async (t) => {
    assert.equal(cluster.config.keys.refreshSeconds, REFRESH_SECONDS, 'the instances read the short refresh interval');
    const jwks = new Map<number, JSONWebKeySet>();
    const fetchJwks = async (i: number) => {
      const set = (await (await fetch(`${cluster.instances[i]!.url}/jwks`)).json()) as JSONWebKeySet;
      jwks.set(i, set);
      return set;
    };
    for (const inst of cluster.instances) await fetchJwks(inst.index);
    const oldKids = new Set(jwks.get(0)!.keys.map((k) => k.kid));

    let issued = 0;
    let checks = 0;
    const failures: string[] = [];
    const failedAt: number[] = [];
    let rotateStarted = Infinity;
    const kidsSeen = new Map<string, number>();
    /** Verifies one token at every instance: its JWKS (refetched once on an unknown kid) and its userinfo. */
    const verifyEverywhere = async (idToken: string, accessToken: string) => {
      const { kid } = decodeProtectedHeader(idToken);
      kidsSeen.set(kid!, (kidsSeen.get(kid!) ?? 0) + 1);
      for (const inst of cluster.instances) {
        checks++;
        let set = jwks.get(inst.index)!;
        if (!set.keys.some((k) => k.kid === kid)) set = await fetchJwks(inst.index);
        try {
          await jwtVerify(idToken, createLocalJWKSet(set), { issuer: cluster.issuer, audience: web.clientId });
        } catch (err) {
          failures.push(`${new Date().toISOString()} instance ${inst.index + 1}: ID token with kid ${kid}: ${(err as Error).message}`);
          failedAt.push(performance.now() - rotateStarted);
        }
        const me = await fetch(`${inst.url}/me`, { headers: { authorization: `Bearer ${accessToken}`, 'x-forwarded-proto': 'https' } });
        if (me.status !== 200) failures.push(`${new Date().toISOString()} instance ${inst.index + 1}: userinfo ${me.status}`);
      }
    };

    // Sign-ins give each loop a refresh token; every refresh gives a new ID token from whichever instance nginx picked.
    let running = true;
    const loops = users.map(async (user) => {
      let { refresh_token: refresh, id_token: idToken, access_token: accessToken } = await signIn(cluster.issuer, web, user, true);
      while (running) {
        issued++;
        await verifyEverywhere(idToken, accessToken);
        const res = await fetch(`${cluster.issuer}/token`, {
          method: 'POST',
          headers: { authorization: basicAuth(web.clientId, web.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh! }).toString(),
        });
        const body = (await res.json()) as { id_token?: string; access_token?: string; refresh_token?: string; error?: string };
        if (res.status !== 200 || !body.id_token || !body.access_token) {
          failures.push(`${new Date().toISOString()} refresh: HTTP ${res.status} ${body.error ?? ''}`);
          continue;
        }
        ({ id_token: idToken, access_token: accessToken } = body as { id_token: string; access_token: string });
        refresh = body.refresh_token ?? refresh;
      }
    });

    await sleep(2000);
    rotateStarted = performance.now();
    const cli = await promisify(execFile)(process.execPath, [path.join(path.dirname(serverEntry), 'admin', 'cli.js'), 'keys', 'rotate'], { cwd: projectRoot, env: childEnvironment(cluster.env) });
    const rotateMs = Math.round(performance.now() - rotateStarted);
    // Until every instance has reloaded its keys (refreshSeconds) and signs with the new ones, with room for
    // a rotation that publishes a key some refresh intervals before signing with it.
    await sleep(5 * REFRESH_SECONDS * 1000);
    running = false;
    await Promise.all(loops);

    for (const inst of cluster.instances) await fetchJwks(inst.index);
    const newKids = jwks.get(0)!.keys.map((k) => k.kid!).filter((kid) => !oldKids.has(kid));
    t.diagnostic(`rotation by the CLI took ${rotateMs} ms (${cli.stdout.trim().split('\n').length} lines out); ${issued} ID tokens issued through nginx, ` +
      `${checks} checks at the instances, ${failures.length} failed; kids used: ${[...kidsSeen].map(([k, n]) => `${oldKids.has(k) ? 'old' : 'new'} ${k.slice(0, 8)}…×${n}`).join(', ')}`);
    if (failedAt.length) t.diagnostic(`verification failed from ${Math.round(Math.min(...failedAt))} ms to ${Math.round(Math.max(...failedAt))} ms after the rotation began`);
    assert.equal(newKids.length, cluster.config.keys.algorithms.length, 'one new key per algorithm');
    for (const inst of cluster.instances) {
      assert.deepEqual(jwks.get(inst.index)!.keys.map((k) => k.kid).sort(), jwks.get(0)!.keys.map((k) => k.kid).sort(), `instance ${inst.index + 1} publishes the same keys`);
    }
    assert.ok([...kidsSeen.keys()].some((kid) => newKids.includes(kid)), 'tokens were signed with a new key during the run');
    assert.ok([...kidsSeen.keys()].some((kid) => oldKids.has(kid)), 'and with an old one before it');
    assert.deepEqual(failures.slice(0, 20), [], `${failures.length} checks failed`);
  });
});
