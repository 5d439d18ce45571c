import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm } from '../helpers/browser.ts';
import { drive, RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('the session cookie', () => {
  let server: TestServer;
  let rp: RelyingParty;
  const gina = { email: 'gina@example.com', password: 'gina signs in twice' };
  before(async () => {
    server = await startTestServer();
    await server.addUser(gina);
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'S', redirectUris: ['http://localhost:9999/cb'] }));
  });
  after(() => server.stop());

  /** Where a prompt=none request lands for a browser holding exactly these cookies. */
  async function promptNone(jar: Map<string, string>): Promise<URL> {
    const browser = new CookieClient(server.url);
    for (const [k, v] of jar) browser.jar.set(k, v);
    const page = await browser.follow((await rp.authorization({ prompt: 'none' })).url);
    assert.ok(page.stoppedAt, `prompt=none ends at the app (${page.status})`);
    return new URL(page.stoppedAt!);
  }

  it('is replaced at every sign-in, and the old value stops working', async () => {
    const browser = new CookieClient(server.url);
    await drive(browser, (await rp.authorization()).url, gina);
    const first = browser.jar.get('_session');
    assert.ok(first);
    const oldJar = new Map(browser.jar);

    await drive(browser, (await rp.authorization({ prompt: 'login' })).url, gina);
    const second = browser.jar.get('_session');
    assert.ok(second);
    assert.notEqual(second, first, 'a new session id after signing in again');

    assert.equal((await promptNone(oldJar)).searchParams.get('error'), 'login_required', 'the old session cookie is worthless');
    assert.ok((await promptNone(browser.jar)).searchParams.get('code'), 'the new one works');
  });

  it('is set HttpOnly and SameSite=Lax when the sign-in completes', async () => {
    const browser = new CookieClient(server.url);
    const { url } = await rp.authorization();
    const page = await browser.follow(url);
    const form = findForm(page.body, '/login');
    let res = await browser.request(new URL(form.action, page.url).toString(), { form: { ...form.hidden, ...gina } });
    const seen: string[] = [...res.headers.getSetCookie()];
    for (let i = 0; i < 5 && res.headers.get('location'); i++) {
      const next = new URL(res.headers.get('location')!, res.url);
      if (next.origin !== server.url) break;
      res = await browser.request(next.toString());
      seen.push(...res.headers.getSetCookie());
    }
    const session = seen.find((c) => c.startsWith('_session='));
    assert.ok(session, 'the session cookie is set when the sign-in resumes');
    assert.match(session!, /httponly/i);
    assert.match(session!, /samesite=lax/i);
  });
});
