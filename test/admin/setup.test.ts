import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../../src/paths.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** A field of the page: its input tag and the message tied to it, if any. */
function field(page: Page, name: string): { input: string; error: string | undefined } {
  const input = new RegExp(`<input id="${name}"[^>]*>`).exec(page.body)?.[0];
  assert.ok(input, `an input named ${name}`);
  return { input, error: new RegExp(`<p class="error field-error" id="${name}-error">([^<]*)</p>`).exec(page.body)?.[1] };
}

/** The field shows `message` right under it, and the input points at it (aria-describedby) and says it is invalid. */
function problemAt(page: Page, name: string, message: RegExp) {
  const { input, error } = field(page, name);
  assert.ok(error !== undefined, `a message under ${name}`);
  assert.match(error, message);
  assert.match(input, /aria-invalid="true"/, `${name} is marked invalid`);
  const describedBy = /aria-describedby="([^"]*)"/.exec(input)?.[1]?.split(' ') ?? [];
  assert.ok(describedBy.includes(`${name}-error`), `${name} is described by its message (${input})`);
}

function fine(page: Page, name: string) {
  const { input, error } = field(page, name);
  assert.equal(error, undefined, `no message under ${name}`);
  assert.doesNotMatch(input, /aria-invalid/);
}

const valueOf = (input: string) => /value="([^"]*)"/.exec(input)?.[1];

describe('the first administrator\'s setup page', () => {
  let server: TestServer;
  let link: string;

  before(async () => {
    server = await startTestServer();
    link = server.server.setupLink!;
    assert.ok(link, 'a fresh database gets a setup link');
    await server.addUser({ email: 'taken@example.com', password: 'someone else entirely' });
  });
  after(() => server?.stop());

  it('shows every problem of a submission at once, each tied to its field, and keeps what was typed except the password', async () => {
    const browser = new CookieClient(server.url);
    const page = await browser.follow(link);
    assert.equal(page.status, 200);
    const longName = 'N'.repeat(201);
    const bad = await browser.submit(page, '/setup', { name: longName, email: 'not-an-email', password: 'short' });
    assert.equal(bad.status, 400);
    assert.match(bad.body, /role="alert"[^>]*>Check the highlighted fields below\./);
    problemAt(bad, 'name', /That name is too long/);
    problemAt(bad, 'email', /Enter a valid email address/);
    problemAt(bad, 'password', /Use at least 8 characters/);
    assert.equal(valueOf(field(bad, 'email').input), 'not-an-email', 'the email typed is kept');
    assert.equal(valueOf(field(bad, 'name').input), longName.slice(0, 200), 'the name typed is kept (cut to what the field holds)');
    assert.equal(valueOf(field(bad, 'password').input), undefined, 'the password is never sent back');
    assert.ok(!bad.body.includes('short"'), 'the password typed is nowhere on the page');
    assert.equal(bad.headers.get('cache-control'), 'no-store');

    const missing = await browser.submit(bad, '/setup', { name: 'Root', email: '', password: 'password' });
    assert.equal(missing.status, 400);
    problemAt(missing, 'email', /Enter your email address/);
    problemAt(missing, 'password', /too common/);
    fine(missing, 'name');
    assert.equal(valueOf(field(missing, 'name').input), 'Root');

    // Only the field with a problem is marked; the password hint stays tied to the password too.
    const ownEmail = await browser.submit(missing, '/setup', { email: 'root@example.com', password: 'root@example.com' });
    assert.equal(ownEmail.status, 400);
    problemAt(ownEmail, 'password', /Do not use your email address or name/);
    assert.match(field(ownEmail, 'password').input, /aria-describedby="password-error password-hint"/);
    fine(ownEmail, 'email');
    fine(ownEmail, 'name');
  });

  it('says an address that already has an account next to the email field, and the link still works afterwards', async () => {
    const browser = new CookieClient(server.url);
    const page = await browser.follow(link);
    const taken = await browser.submit(page, '/setup', { name: 'Root', email: 'taken@example.com', password: 'the first administrator' });
    assert.equal(taken.status, 400);
    problemAt(taken, 'email', /already exists/);
    assert.equal(valueOf(field(taken, 'email').input), 'taken@example.com');
    assert.equal((await new CookieClient(server.url).follow(link)).status, 200, 'failed submissions do not spend the link');
  });

  it('creates the admin, and the done page names the command that works from a checkout, and the Docker form', async () => {
    const browser = new CookieClient(server.url);
    const page = await browser.follow(link);
    const done = await browser.submit(page, '/setup', { name: 'Root', email: 'root@example.com', password: 'the first administrator' });
    assert.equal(done.status, 200);
    assert.match(done.body, /Administrator created/);

    const command = (id: string) => {
      const code = new RegExp(`<pre class="command" id="${id}"><code>([^<]*)</code></pre>`).exec(done.body)?.[1];
      assert.ok(code, `a command block #${id}`);
      assert.match(done.body, new RegExp(`<button [^>]*data-copy="${id}"`), `a copy button for #${id}`);
      return code.replaceAll('&quot;', '"').replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
    };
    const checkout = command('command-checkout');
    assert.equal(checkout, 'npm run cli -- clients add --name "My app" --redirect-uri https://app.example.com/callback');
    const scripts = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.cli ?? '', /src\/admin\/cli\.ts/, 'package.json provides the "cli" script the page names');

    const docker = command('command-docker');
    assert.equal(docker, 'docker exec -it <container> node dist/src/admin/cli.js clients add --name "My app" --redirect-uri https://app.example.com/callback');
    assert.ok(existsSync(path.join(projectRoot, 'src/admin/cli.ts')), 'dist/src/admin/cli.js is what the build makes of src/admin/cli.ts');
    assert.ok(readFileSync(path.join(projectRoot, 'README.md'), 'utf8').includes('docker exec -it <container> node dist/src/admin/cli.js'), 'the README documents the Docker form');

    assert.doesNotMatch(done.body, /(^|[\s>])latchkey clients add/m, 'no `latchkey` binary, which a checkout does not have on its PATH');
    assert.match(done.body, /<script src="\/assets\/copy\.js">/);

    // The command wraps between words: the block's own rule beats the mid-word break of inline code.
    const css = await (await fetch(`${server.url}/assets/style.css`)).text();
    assert.match(css, /pre\.command \{[^}]*white-space: pre-wrap;[^}]*overflow-wrap: anywhere;/);
    assert.match(css, /pre\.command code \{[^}]*word-break: normal;/);

    assert.equal((await new CookieClient(server.url).follow(link)).status, 404, 'the link works once');
  });

  it('leaves an audit row with the new administrator as actor, from the request\'s address, and the event in their activity', async () => {
    const admin = (await server.server.services.store.users.findByEmail('root@example.com'))!;
    const rows = await server.server.services.database.knex('audit_log').where({ action: 'setup.first_admin' });
    assert.deepEqual(rows.map((r) => [r.actor_type, r.actor_id, r.target_type, r.target_id, r.result, r.ip]), [['user', admin.id, 'user', admin.id, 'ok', '127.0.0.1']]);
    assert.match(rows[0].request_id, /^[A-Za-z0-9._-]{8,64}$/);
    assert.deepEqual(rows[0].after.roles, ['admin']);
    assert.deepEqual((await server.server.services.store.events.forUser(admin.id)).map((e) => e.type), ['admin.setup']);
  });
});
