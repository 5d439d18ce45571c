/**
 * Fault: an instance is killed (SIGKILL) between the password and the second step of a sign-in, behind nginx
 * with 3 instances on one PostgreSQL database. The user finishes on another instance with nothing lost, and
 * the authorization code is redeemed once only. `npm run fault:kill` (needs nginx, openssl and PostgreSQL).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { addTotp, awaitFreshStep, nowSeconds, totpCode } from '../helpers/two-step.ts';

describe('an instance killed mid-sign-in (nginx, 3 instances, PostgreSQL)', () => {
  let cluster: TestCluster;
  let rp: RelyingParty;
  const user = { email: 'kim@example.com', password: 'kim signs in through the proxy' };
  let userId: string;
  let key: Buffer;

  before(async () => {
    cluster = await startTestCluster();
    userId = (await cluster.addUser(user)).id;
    ({ key } = await addTotp(cluster.services.store, userId, 'Phone'));
    rp = await RelyingParty.create(cluster.issuer, await cluster.addClient({ name: 'Kill test', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(async () => {
    await cluster?.stop();
  });

  it('lets the user finish the second step on another instance; the code is redeemed once', async (t) => {
    const browser = new CookieClient(cluster.issuer);
    const { url, checks } = await rp.authorization();
    const login = await browser.follow(url);
    assert.equal(login.status, 200, login.body.slice(0, 300));
    const uid = /\/interaction\/([^/]+)\/login/.exec(findForm(login.body, '/login').action)?.[1];
    assert.ok(uid, 'the sign-in form posts to its interaction');

    const step = await browser.submit(login, '/login', user);
    assert.match(new URL(step.url).pathname, /\/verify$/, `the second step is asked for, got ${step.status} at ${step.url}`);
    assert.match(step.body, /Enter the 6-digit code from/);
    const served = cluster.servedBy(new RegExp(`"POST /interaction/${uid}/login" 30\\d`));
    const victim = served.at(-1)!;
    assert.ok(victim >= 0, 'the password step was served by one of the instances');

    const logBefore = cluster.accessLog().split('\n').filter(Boolean).length;
    const exit = await cluster.kill(victim, 'SIGKILL');
    assert.equal(exit.signal, 'SIGKILL', 'the instance that took the password is gone');
    assert.equal(await fetch(`${cluster.instances[victim]!.url}/healthz`).then(() => 'answered', () => 'refused'), 'refused');

    await awaitFreshStep(6);
    const started = performance.now();
    let page = await browser.submit(step, '/verify', { code: totpCode(key, nowSeconds()) });
    if (!page.stoppedAt && /\/confirm"/.test(page.body)) page = await browser.submit(page, '/confirm');
    const finishedMs = Math.round(performance.now() - started);
    const callback = page.stoppedAt;
    assert.ok(callback, `back at the app, got ${page.status} at ${page.url}: ${page.body.slice(0, 300)}`);
    assert.ok(callback.startsWith(rp.redirectUri), callback);
    const verifiedBy = cluster.servedBy(new RegExp(`"POST /interaction/${uid}/verify" 30\\d`));
    assert.notEqual(verifiedBy.at(-1), victim, 'the second step was served by a surviving instance');

    const tokens = await rp.callback(callback, checks);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, userId);
    assert.equal(claims.acr, 'urn:latchkey:acr:mfa', 'the password and the app: nothing of the first step was lost');

    const me = () => fetch(`${cluster.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }).then((r) => r.status);
    assert.equal(await me(), 200, 'the access token works');

    // The same code a second time: refused, and the tokens of the first redemption stop working (RFC 6749 4.1.2).
    const code = new URL(callback).searchParams.get('code')!;
    const again = await fetch(`${cluster.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(rp.client.clientId)}:${encodeURIComponent(rp.client.clientSecret!)}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: rp.redirectUri, code_verifier: checks.pkceCodeVerifier }),
    });
    assert.equal(again.status, 400);
    assert.equal(((await again.json()) as { error: string }).error, 'invalid_grant');
    assert.equal(await me(), 401, 'a replayed code revokes what it granted: nothing is granted twice');

    // Every request through nginx since the kill was answered; the ones that met the dead instance were retried.
    const lines = cluster.accessLog().split('\n').filter(Boolean).slice(logBefore);
    const failed = lines.filter((l) => / (5\d\d) upstream=/.test(l));
    const retried = lines.filter((l) => /upstream=[^ ]+, /.test(l));
    assert.deepEqual(failed, [], 'no 5xx through the proxy');

    const restart = performance.now();
    await cluster.start(victim);
    const restartMs = Math.round(performance.now() - restart);
    assert.equal((await fetch(`${cluster.instances[victim]!.url}/readyz`)).status, 200);
    t.diagnostic(`killed instance ${victim + 1} (pid gone in ${exit.ms} ms); second step + consent + redirect on the survivors in ${finishedMs} ms; ` +
      `${lines.length} requests through nginx after the kill, ${failed.length} failed, ${retried.length} retried on another instance; restart to ready ${restartMs} ms`);
  });
});
