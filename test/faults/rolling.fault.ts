/**
 * Fault: a rolling restart of the 3 instances behind nginx while client-credentials grants, refresh-token
 * grants and password sign-ins run through it. Each instance gets SIGTERM, drains and exits 0, is started
 * again and becomes ready before the next one goes: not one request may fail. `npm run fault:rolling`.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { describeCounts, startLoad, type LoadFixtures } from './load.ts';

describe('a rolling restart under load (nginx, 3 instances, PostgreSQL)', () => {
  let cluster: TestCluster;
  let fixtures: LoadFixtures;

  before(async () => {
    cluster = await startTestCluster();
    const users = [];
    for (let i = 0; i < 4; i++) {
      const u = { email: `rolling-${i}@example.com`, password: `rolling user ${i} password` };
      await cluster.addUser(u);
      users.push(u);
    }
    const redirectUri = 'http://127.0.0.1:9/callback';
    fixtures = {
      issuer: cluster.issuer,
      users,
      service: await cluster.addClient({ name: 'Rolling service', grantTypes: ['client_credentials'] }),
      web: { ...(await cluster.addClient({ name: 'Rolling web', redirectUris: [redirectUri] })), redirectUri },
    };
  });
  after(async () => {
    await cluster?.stop();
  });

  it('serves every request while each instance in turn drains, exits and comes back', async (t) => {
    const load = await startLoad(fixtures);
    const logFrom = cluster.accessLog().split('\n').filter(Boolean).length;
    const started = performance.now();
    await sleep(2000);
    const steps: string[] = [];
    for (const inst of cluster.instances) {
      const oldPid = inst.pid;
      const exit = await cluster.kill(inst.index, 'SIGTERM');
      assert.deepEqual([exit.code, exit.signal], [0, null], `instance ${inst.index + 1} drained and exited 0:\n${cluster.instanceLog(inst.index).slice(-1500)}`);
      const down = performance.now();
      await cluster.start(inst.index);
      const upMs = Math.round(performance.now() - down);
      assert.notEqual(inst.pid, oldPid, 'a new process');
      steps.push(`instance ${inst.index + 1}: SIGTERM to exit ${exit.ms} ms, start to ready ${upMs} ms`);
      await sleep(2000);
    }
    const counts = await load.stop();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);

    const lines = cluster.accessLog().split('\n').filter(Boolean).slice(logFrom);
    const proxyFailures = lines.filter((l) => / 5\d\d upstream=/.test(l));
    const retried = lines.filter((l) => /upstream=[^ ]+, /.test(l)).length;
    t.diagnostic(`${seconds} s under load: ${describeCounts(counts)}; ${lines.length} HTTP requests through nginx, ${proxyFailures.length} 5xx, ${retried} retried on another instance`);
    for (const s of steps) t.diagnostic(s);

    const why = () => `\nnginx's 5xx lines:\n${proxyFailures.join('\n')}\nnginx's error log (last lines):\n${cluster.errorLog().split('\n').slice(-15).join('\n')}`;
    for (const [kind, c] of Object.entries(counts)) {
      assert.ok(c.served > 0, `${kind} requests ran`);
      assert.equal(c.failed, 0, `no ${kind} request failed:\n${c.failures.join('\n')}${why()}`);
    }
    assert.deepEqual(proxyFailures, [], 'no 5xx through the proxy');
  });
});
