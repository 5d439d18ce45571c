/**
 * A flood of link mails to many addresses from one place: besides one mail a minute per account, one IP
 * address gets `mail.linksPerIpPerHour` link mails an hour, to any accounts. The page answers the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { CookieClient } from '../helpers/browser.ts';
import { sleep } from '../helpers/oauth.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('link mails per IP address', () => {
  let server: TestServer;
  let mailbox: MailBox;

  before(async () => {
    mailbox = await startMailBox();
    server = await startTestServer({
      config: { mail: { from: 'Latchkey <no-reply@localhost>', smtpUrl: mailbox.url, linksPerIpPerHour: 3 }, proxy: { trusted: ['127.0.0.1/32', '::1'], tlsTerminated: false } },
    });
  });
  after(async () => {
    await server.stop();
    await mailbox.stop();
  });

  it('ships 20 an hour', () => {
    assert.equal(loadConfig({ env: {} }).mail.linksPerIpPerHour, 20);
    assert.equal(loadConfig({ env: { LATCHKEY_MAIL_LINKS_PER_IP_PER_HOUR: '50' } }).mail.linksPerIpPerHour, 50);
  });

  /** "Forgot your password?" for `email`, from `ip`; the page's status and text. */
  async function askReset(email: string, ip: string) {
    const browser = new CookieClient(server.url);
    const headers = { 'x-forwarded-for': ip };
    const form = await browser.follow('/reset', { headers });
    return browser.submit(form, '/reset', { email }, headers);
  }

  it('sends reset links for 3 accounts from one address, not for a 4th and 5th, while another address still gets its own', async () => {
    const emails = Array.from({ length: 5 }, (_, i) => `flooded${i}@example.com`);
    for (const email of [...emails, 'elsewhere@example.com']) await server.addUser({ email, password: `a password for ${email}` });
    const since = mailbox.messages.length;
    const pages = [];
    for (const email of emails) pages.push(await askReset(email, '198.51.100.7'));
    for (const p of pages) {
      assert.equal(p.status, 200);
      assert.match(p.body, /If an account exists for .+, we sent a link/, 'the answer is the same whether or not a mail went out');
    }
    await askReset('elsewhere@example.com', '203.0.113.9');
    await mailbox.next('elsewhere@example.com', { since });
    const flooded = () => mailbox.messages.slice(since).flatMap((m) => m.to).filter((to) => emails.includes(to));
    for (let i = 0; i < 50 && flooded().length < 3; i++) await sleep(100);
    await sleep(300); // time for a fourth, were one to go out
    const sentTo = mailbox.messages.slice(since).flatMap((m) => m.to);
    // Each link mail goes out in the background after the answer (the same timing with or without an
    // account), so which three of the five win the address's budget is up to those jobs; that only three do is not.
    assert.equal(emails.filter((e) => sentTo.includes(e)).length, 3, `three of the five got a link: ${sentTo.join(', ')}`);
    assert.match(server.logText(), /link mail not sent: too many from this address/);
  });
});
