/**
 * The console's session cookie as a browser gets it behind TLS: `__Secure-lk.admin`, Secure, HttpOnly,
 * Path=/admin, SameSite=Strict; the account page's keeps SameSite=Lax; the console's flow cookie stays Lax
 * (the provider's redirect back may end a chain another site began), and each reads back only under its name.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import { loadConfig } from '../../src/config.ts';
import { ACCOUNT_APP, ADMIN_APP } from '../../src/first-party/app.ts';
import { appCookies, flowCookie, sessionCookie, sessionCookies } from '../../src/first-party/cookies.ts';

describe('the console\'s cookies', () => {
  const config = loadConfig({ env: {}, overrides: { issuer: 'https://login.example.test' } });
  let url: string;
  let close: () => void;

  before(async () => {
    const koa = new Koa();
    koa.use(async (ctx) => {
      if (ctx.path === '/set') {
        sessionCookies(config, ADMIN_APP).set(ctx, sessionCookie(ADMIN_APP), 'console-id', 600);
        sessionCookies(config, ACCOUNT_APP).set(ctx, sessionCookie(ACCOUNT_APP), 'account-id', 600);
        appCookies(config, ADMIN_APP).set(ctx, flowCookie(ADMIN_APP), 'flow', 600);
        ctx.body = 'set';
      } else {
        ctx.body = sessionCookies(config, ADMIN_APP).get(ctx, sessionCookie(ADMIN_APP)) ?? 'none';
      }
    });
    const server = koa.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => server.close();
  });
  after(() => close());

  it('is __Secure-, Secure, HttpOnly, Path=/admin and SameSite=Strict; the account page\'s and the flow\'s stay Lax', async () => {
    const res = await fetch(`${url}/set`);
    const cookies = res.headers.getSetCookie();
    const admin = cookies.find((c) => c.startsWith('__Secure-lk.admin='));
    assert.ok(admin, cookies.join(' | '));
    for (const attribute of [/;\s*path=\/admin(;|$)/i, /;\s*secure/i, /;\s*httponly/i, /;\s*samesite=strict/i]) assert.match(admin, attribute);
    assert.match(cookies.find((c) => c.startsWith('__Secure-lk.account='))!, /;\s*samesite=lax/i);
    assert.match(cookies.find((c) => c.startsWith('__Secure-lk.admin.flow='))!, /;\s*samesite=lax/i);

    const jar = cookies.map((c) => c.split(';')[0]).join('; ');
    assert.equal(await (await fetch(`${url}/get`, { headers: { cookie: jar } })).text(), 'console-id');
    const moved = jar.replace(/__Secure-lk\.admin=[^;]*/, `__Secure-lk.admin=${/__Secure-lk\.account=([^;]*)/.exec(jar)![1]}`);
    assert.equal(await (await fetch(`${url}/get`, { headers: { cookie: moved } })).text(), 'none', 'the account\'s cookie value is not the console\'s');
  });
});
