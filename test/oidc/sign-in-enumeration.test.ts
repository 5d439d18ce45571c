import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { median } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Answer {
  status: number;
  body: string;
  cookieNames: string[];
  ms: number;
  location: string | null;
}

describe('sign-in does not reveal whether an account exists', () => {
  let server: TestServer;
  let rp: RelyingParty;
  // Addresses of the same length, so that echoing the typed address back does not change the body's size.
  const known = { email: 'known.user@example.com', password: 'the real password of known' };
  const disabled = { email: 'dis.abled@example.com', password: 'the real password of disabled' };
  const unknown = { email: 'nobody.xx@example.com', password: 'any password at all here' };

  before(async () => {
    // Each address fails six times here; throttling (tested in test/security/throttling.test.ts) must not
    // step in before the comparison is done, so this suite allows more free failures.
    server = await startTestServer({ config: { throttle: { freeFailures: 20 } } });
    await server.addUser(known);
    const d = await server.addUser(disabled);
    await server.server.services.store.users.setStatus(d.id, 'disabled');
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Web', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  /** Opens a fresh sign-in page and times only the POST of the password form. */
  async function attempt(email: string, password: string): Promise<Answer> {
    const browser = new CookieClient(server.url);
    const page = await browser.follow((await rp.authorization()).url);
    const form = findForm(page.body, '/login');
    const uid = /\/interaction\/([^/]+)\/login/.exec(form.action)![1]!;
    const csrf = form.hidden.csrf!;
    const started = performance.now();
    const res = await fetch(new URL(form.action, page.url), {
      method: 'POST',
      redirect: 'manual',
      headers: {
        accept: 'text/html',
        cookie: browser.cookieHeader(),
        origin: server.url,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ ...form.hidden, email, password }),
    });
    const body = await res.text();
    const ms = performance.now() - started;
    const normalized = body.replaceAll(uid, '<uid>').replaceAll(csrf, '<csrf>').replaceAll(email, '<email>');
    const cookieNames = res.headers.getSetCookie().map((c) => c.slice(0, c.indexOf('='))).sort();
    return { status: res.status, body: normalized, cookieNames, ms, location: res.headers.get('location') };
  }

  it('answers an unknown email, a wrong password and a disabled account with the same status, body, cookies and timing', async () => {
    const cases = {
      unknown: () => attempt(unknown.email, unknown.password),
      wrongPassword: () => attempt(known.email, 'not the right password'),
      disabledRightPassword: () => attempt(disabled.email, disabled.password),
      disabledWrongPassword: () => attempt(disabled.email, 'not the right password'),
    };
    const answers: Record<keyof typeof cases, Answer[]> = { unknown: [], wrongPassword: [], disabledRightPassword: [], disabledWrongPassword: [] };
    // Warm-up (the decoy hash is computed once, lazily), then interleaved rounds so that drift hits all cases alike.
    await cases.unknown();
    for (let round = 0; round < 5; round++) {
      for (const [name, run] of Object.entries(cases) as [keyof typeof cases, () => Promise<Answer>][]) answers[name].push(await run());
    }

    const reference = answers.wrongPassword[0]!;
    assert.equal(reference.status, 401);
    assert.equal(reference.location, null, 'no redirect: the user stays on the sign-in page');
    assert.match(reference.body, /Incorrect email or password\./);
    for (const [name, list] of Object.entries(answers)) {
      for (const a of list) {
        assert.equal(a.status, reference.status, `${name}: status`);
        assert.equal(a.body, reference.body, `${name}: body`);
        assert.deepEqual(a.cookieNames, reference.cookieNames, `${name}: Set-Cookie names`);
        assert.equal(a.location, null, `${name}: no redirect`);
      }
    }

    const base = median(answers.wrongPassword.map((a) => a.ms));
    for (const [name, list] of Object.entries(answers)) {
      const m = median(list.map((a) => a.ms));
      const ratio = m / base;
      assert.ok(ratio > 0.5 && ratio < 2, `${name}: median ${m.toFixed(1)} ms vs wrong password ${base.toFixed(1)} ms (ratio ${ratio.toFixed(2)})`);
    }
    // A hash was really verified in every case (argon2id takes tens of milliseconds); a shortcut would be ~1 ms.
    assert.ok(median(answers.unknown.map((a) => a.ms)) > 5, 'the unknown account is checked against a decoy hash');
  });

  it('still signs the known user in with the right password (the comparison above is not vacuous)', async () => {
    const a = await attempt(known.email, known.password);
    assert.equal(a.status, 303);
    assert.ok(a.location, 'redirected on');
  });
});
