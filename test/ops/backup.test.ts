/**
 * A backup of a running system with PostgreSQL's own tools: `pg_dump` while the server serves, `pg_restore`
 * into a new database, a server started on it. Sign-ins still work there, and the signing keys (sealed in
 * the dump, opened with the same secrets key) still verify tokens issued before the dump.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { migrations } from '../../migrations/index.ts';
import { rotateKeys } from '../../src/admin/operations/keys.ts';
import { openDatabase } from '../../src/store/db.ts';
import { CookieClient } from '../helpers/browser.ts';
import { TEST_DATABASE_URL, throwAwayDatabase, type TestDatabase } from '../helpers/db.ts';
import { decodeJwt, fetchJwks, verifyJwt } from '../helpers/jwt.ts';
import { userinfo } from '../helpers/oauth.ts';
import { RelyingParty } from '../helpers/rp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const run = promisify(execFile);
const REDIRECT = 'http://localhost:9999/cb';

describe('pg_dump of a running server, restored into a new database', { skip: !TEST_DATABASE_URL && 'needs LATCHKEY_TEST_DATABASE_URL' }, () => {
  let live: TestServer;
  let restored: TestServer | undefined;
  let restoredDb: TestDatabase | undefined;
  let dir: string;
  let client: Awaited<ReturnType<TestServer['addClient']>>;
  const person = { email: 'backed-up@example.com', password: 'a password worth a backup' };
  let userId: string;
  let before_: { idToken: string; accessToken: string };

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'latchkey-backup-'));
    live = await startTestServer();
    userId = (await live.addUser(person)).id;
    client = await live.addClient({ name: 'Shop', redirectUris: [REDIRECT] });
    const { tokens } = await (await RelyingParty.create(live.url, client)).signIn(new CookieClient(live.url), person);
    before_ = { idToken: tokens.id_token!, accessToken: tokens.access_token };
    // A rotation before the dump: the key that signed it is on its way out, and the copy's JWKS must still hold it.
    await rotateKeys(live.server.services, { via: 'cli' });
  });

  after(async () => {
    await restored?.stop();
    await restoredDb?.drop();
    await live?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('dumps while sign-ins run, restores, and a server on the copy signs users in and verifies the old tokens', async () => {
    const file = path.join(dir, 'latchkey.dump');
    // Sign-ins on the live server while pg_dump reads its database: the dump is one consistent snapshot.
    const rp = await RelyingParty.create(live.url, client);
    let busy = true;
    let during = 0;
    const load = (async () => {
      while (busy) {
        await rp.signIn(new CookieClient(live.url), person);
        during++;
      }
    })();
    try {
      await run('pg_dump', ['--format=custom', '--no-owner', `--file=${file}`, `--dbname=${live.db.url!}`]);
    } finally {
      busy = false;
      await load;
    }
    assert.ok(statSync(file).size > 0);
    assert.ok(during >= 1, 'sign-ins ran during the dump');

    const copy = await throwAwayDatabase(TEST_DATABASE_URL!, 'latchkey_restore');
    restoredDb = { database: openDatabase({ url: copy.url }), url: copy.url, drop: copy.drop };
    await run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${copy.url}`, file]);
    restored = await startTestServer({ db: restoredDb });
    const applied = await restoredDb.database.knex('knex_migrations').count({ n: '*' });
    assert.equal(Number((applied as { n: number }[])[0]!.n), migrations.length, 'the copy was up to date: its start applied nothing more');

    const jwks = await fetchJwks(restored.url);
    assert.equal(verifyJwt(before_.idToken, jwks).payload.sub, userId, 'an ID token from before the dump verifies against the copy\'s JWKS');
    const info = await userinfo(restored.url, before_.accessToken);
    assert.equal(info.status, 200, 'an access token from before the dump still works there');

    const { tokens, claims } = await (await RelyingParty.create(restored.url, client)).signIn(new CookieClient(restored.url), person);
    assert.equal(claims.sub, userId, 'the user signs in on the copy, and the client with its old secret');
    const liveKids = (await live.server.services.store.signingKeys.published()).map((k) => k.kid).sort();
    assert.deepEqual(jwks.map((k) => k.kid).sort(), liveKids, 'the copy publishes the live system\'s keys, and no new one');
    assert.ok(liveKids.includes(decodeJwt(tokens.id_token!).header.kid as string), 'and signs with one of them');
  });
});
