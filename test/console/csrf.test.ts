/**
 * CSRF on every console form: an administrator's console is crawled (every page reachable by links under
 * /admin, every section), and each form that posts is sent from another Origin with its right token, and
 * from this origin without a token and with a wrong one. Each is refused with a 403 and nothing changes:
 * not a user, a method, a client, a key, a console session, nor the audit log. Every page crawled is
 * no-store and forbids framing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formsOf } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { addTotp } from '../helpers/two-step.ts';
import { consoleUser, signInConsole } from './helpers.ts';

const MAX_PAGES = 150;

describe('CSRF on the console\'s forms', () => {
  let server: TestServer;
  const knex = () => server.server.services.database.knex;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  /** What a refused form must leave as it was. */
  async function snapshot(): Promise<string> {
    const tables: [string, string][] = [
      ['users', 'id'], ['authenticators', 'id'], ['clients', 'client_id'], ['signing_keys', 'kid'], ['console_sessions', 'id_hash'],
      ['audit_log', 'seq'], ['one_time_codes', 'id'],
    ];
    const out: Record<string, unknown> = {};
    for (const [table, key] of tables) out[table] = await knex()(table).orderBy(key);
    out.sessions = await knex()('oidc_payloads').where({ kind: 'Session' }).orderBy('id').select('id');
    return JSON.stringify(out);
  }

  it('refuses every form posted from another origin, without a token or with a wrong one, and nothing changes', async () => {
    const admin = await consoleUser(server, ['admin'], 'csrf-admin');
    // Something on every page: a user with a method and a session, a client.
    const target = await consoleUser(server, [], 'csrf-target');
    await addTotp(server.server.services.store, target.id, 'Second phone');
    await signInConsole(server, target, '/admin').catch(() => undefined); // a no-role sign-in leaves a provider session
    await server.addClient({ name: 'CSRF app', redirectUris: ['http://localhost:9999/cb'] });
    const browser = await signInConsole(server, admin);

    const seen = new Set<string>();
    const queue = ['/admin'];
    const forms = new Map<string, Record<string, string>>();
    while (queue.length && seen.size < MAX_PAGES) {
      const path = queue.shift()!;
      if (seen.has(path)) continue;
      seen.add(path);
      const page = await browser.request(path);
      if (page.status >= 300 && page.status < 400) continue; // a download or a step that redirects: not a page
      assert.ok(page.status < 500, `${path}: ${page.status}`);
      if (!(page.headers.get('content-type') ?? '').includes('text/html')) continue;
      assert.equal(page.headers.get('cache-control'), 'no-store', path);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
      for (const [, href] of page.body.matchAll(/href="(\/admin[^"#]*)"/g)) {
        const link = href!.replaceAll('&amp;', '&');
        if (!seen.has(link) && !link.startsWith('/admin/callback') && !link.startsWith('/admin/api')) queue.push(link);
      }
      // formsOf gives the forms in page order, as this same pattern finds them: their methods are these.
      const methods = [...page.body.matchAll(/<form\b([^>]*)>[\s\S]*?<\/form>/g)].map((m) => /method="post"/i.test(m[1]!) ? 'post' : 'get');
      formsOf(page.body).forEach((form, i) => {
        if (methods[i] === 'post' && form.action.startsWith('/admin') && !forms.has(form.action)) forms.set(form.action, form.hidden);
      });
    }
    for (const section of ['/admin/users', `/admin/users/${target.id}`, '/admin/users/invite']) assert.ok(seen.has(section), `crawled ${section}`);
    for (const action of ['/admin/sign-out', `/admin/users/${target.id}/disable`, `/admin/users/${target.id}/delete`, `/admin/users/${target.id}/roles`, '/admin/users/invite']) {
      assert.ok(forms.has(action), `found the form ${action}; found: ${[...forms.keys()].join(' ')}`);
    }

    const before = await snapshot();
    for (const [action, hidden] of forms) {
      assert.ok(hidden.csrf, `${action} carries a CSRF token`);
      const { csrf, ...rest } = hidden;
      const fields = { ...rest, email: 'csrf-new@example.com', confirm: target.email, proof: 'p', ticket: 't', all: 'yes', 'role:admin': 'yes' };
      const attempts: [string, Record<string, string>, Record<string, string>][] = [
        ['another origin', { ...fields, csrf: csrf! }, { origin: 'https://evil.example' }],
        ['no token', fields, {}],
        ['a wrong token', { ...fields, csrf: `${csrf!.slice(0, -4)}AAAA` }, {}],
      ];
      for (const [how, form, headers] of attempts) {
        const res = await browser.request(action, { form, headers });
        assert.equal(res.status, 403, `${action} from ${how}: ${res.status}`);
      }
    }
    assert.equal(await snapshot(), before, 'nothing changed');
    assert.ok(forms.size >= 8, `forms tried: ${[...forms.keys()].join(' ')}`);
  });
});
