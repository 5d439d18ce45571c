import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { hops } from '../account/helpers.ts';
import { addQuestion, addTotp, awaitFreshStep, nowSeconds, totpCode } from '../helpers/two-step.ts';

const REDIRECT = 'http://localhost:9999/cb';

/** The provider's session cookie as set on the way back to the app (its Set-Cookie line). */
function sessionCookie(pages: Page[]): string {
  const lines = pages.flatMap((p) => p.headers.getSetCookie()).filter((l) => /^(__Host-)?_session=[^;]+;/.test(l));
  assert.ok(lines.length > 0, 'the session cookie is set');
  return lines.at(-1)!;
}
const persistent = (line: string) => /;\s*expires=/i.test(line) || /;\s*max-age=/i.test(line);

describe('"Keep me signed in"', () => {
  let server: TestServer;
  let rp: RelyingParty;

  before(async () => {
    server = await startTestServer();
    rp = await RelyingParty.create(server.url, await server.addClient({ name: 'Notes', redirectUris: [REDIRECT] }));
  });
  after(() => server.stop());

  /** The password posted from the sign-in page, every hop back to the app. */
  async function signIn(fields: Record<string, string>, params: Record<string, string> = {}) {
    const user = await server.newUser('keep');
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization({ scope: 'openid', ...params })).url);
    assert.match(login.body, /<input type="checkbox" id="remember" name="remember" value="yes">/, 'offered, not ticked');
    const form = findForm(login.body, '/login');
    const pages = await hops(browser, new URL(form.action, login.url).toString(), { form: { ...form.hidden, email: user.email, password: user.password, ...fields } });
    return { user, browser, pages };
  }

  it('left unticked: the session cookie ends with the browser', async () => {
    const { pages } = await signIn({});
    assert.match(pages.at(-1)!.body, /\/confirm"/, 'signed in: on to the consent page');
    const line = sessionCookie(pages);
    assert.equal(persistent(line), false, line);
  });

  it('ticked: a long session cookie', async () => {
    const { pages } = await signIn({ remember: 'yes' });
    const line = sessionCookie(pages);
    assert.ok(persistent(line), line);
  });

  it('is kept through a second step', async () => {
    const user = await server.newUser('keepstep');
    await addQuestion(server.server.services.store, (s) => server.server.services.hasher.hash(s), user.id);
    const { key } = await addTotp(server.server.services.store, user.id);
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization({ scope: 'openid', acr_values: 'urn:latchkey:acr:mfa' })).url);
    const step = await browser.submit(login, '/login', { email: user.email, password: user.password, remember: 'yes' });
    assert.match(step.body, /name="code"/);
    await awaitFreshStep(5);
    const form = findForm(step.body, '/verify');
    const pages = await hops(browser, new URL(form.action, step.url).toString(), { form: { ...form.hidden, code: totpCode(key, nowSeconds()) } });
    assert.ok(persistent(sessionCookie(pages)));
  });

  it('ticked stays ticked when the page comes back with an error', async () => {
    const browser = new CookieClient(server.url);
    const login = await browser.follow((await rp.authorization({ scope: 'openid' })).url);
    const wrong = await browser.submit(login, '/login', { email: 'nobody@example.com', password: 'not it at all', remember: 'yes' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body, /id="remember" name="remember" value="yes" checked/);
  });
});
