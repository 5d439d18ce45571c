import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { registry } from '../../src/metrics/registry.ts';
import { createMailer, RETRY_DELAYS_MS } from '../../src/delivery/mail.ts';
import { CookieClient, type Page } from '../helpers/browser.ts';
import { startPgProxy, type PgProxy } from '../helpers/pg-proxy.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';

/**
 * The mail server away (issue 15): stopped (connections refused), or hanging (it accepts the connection and
 * never says a word). Sign-up and password reset answer as fast and exactly as when mail works (they reveal
 * nothing either way); the mail is retried and arrives once the server is back; each failure is logged
 * and counted, with no link, token or password in the log. Latchkey's mail server address leads to a TCP
 * proxy the test controls (the one the database fault test uses), in front of a real SMTP server.
 */
const ANSWER_WITHIN_MS = 2_000;

describe('the SMTP server down', () => {
  let mailbox: MailBox;
  let proxy: PgProxy;
  let server: TestServer;

  before(async () => {
    mailbox = await startMailBox();
    proxy = await startPgProxy(mailbox.url);
    server = await startTestServer({ config: { mail: { smtpUrl: `smtp://127.0.0.1:${proxy.port}` } } });
  });
  after(async () => {
    await server?.stop();
    await proxy?.close();
    await mailbox?.stop();
  });

  /** The page's words and form, without what differs from one request to the next (CSRF tokens, the address typed). */
  const shape = (page: Page, email: string) => page.body.replaceAll(email, '<email>').replace(/name="csrf" value="[^"]*"/g, 'name="csrf" value=""');
  const cookieNames = (page: Page) => page.headers.getSetCookie().map((c) => c.split('=')[0]).sort();

  async function signUp(email: string) {
    const browser = new CookieClient(server.url);
    const form = await browser.follow('/signup');
    const started = performance.now();
    const page = await browser.submit(form, '/signup', { name: 'Mail Fault', email, password: `${email} has a long password` });
    return { page, ms: performance.now() - started };
  }

  async function askForReset(email: string) {
    const browser = new CookieClient(server.url);
    const form = await browser.follow('/reset');
    const started = performance.now();
    const page = await browser.submit(form, '/reset', { email });
    return { page, ms: performance.now() - started };
  }

  const failedMails = async () => {
    const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === 'latchkey_mail_total');
    return metric?.values.filter((v) => v.labels.outcome === 'failed' && v.labels.transport === 'smtp').reduce((n, v) => n + v.value, 0) ?? 0;
  };

  it('answers sign-up and reset at once and as usual, retries the mail until the server is back, and logs and counts each failure without a secret', async () => {
    // The usual answers, with mail working.
    const usualSignUp = await signUp('usual@example.com');
    const usualReset = await askForReset('usual@example.com');
    assert.equal(usualSignUp.page.status, 200);
    assert.equal(usualReset.page.status, 200);
    await mailbox.next('usual@example.com');
    const owner = await server.newUser('owner');
    const failedBefore = await failedMails();

    const check = (what: string, got: { page: Page; ms: number }, usual: { page: Page }, email: string, usualEmail: string) => {
      assert.equal(got.page.status, usual.page.status, `${what}: the usual status`);
      assert.ok(got.ms < ANSWER_WITHIN_MS, `${what} answered within ${ANSWER_WITHIN_MS} ms (took ${Math.round(got.ms)})`);
      assert.equal(shape(got.page, email), shape(usual.page, usualEmail), `${what}: the usual page`);
      assert.deepEqual(cookieNames(got.page), cookieNames(usual.page), `${what}: the usual cookies`);
    };

    // Stopped: every connection refused.
    proxy.setMode('refuse');
    const since = mailbox.messages.length;
    check('sign-up, server stopped', await signUp('stopped@example.com'), usualSignUp, 'stopped@example.com', 'usual@example.com');
    check('reset, server stopped', await askForReset(owner.email), usualReset, owner.email, 'usual@example.com');
    // Hanging: the connection is accepted, and nothing more ever comes.
    await new Promise((r) => setTimeout(r, 300));
    proxy.setMode('blackhole');
    check('sign-up, server hanging', await signUp('hanging@example.com'), usualSignUp, 'hanging@example.com', 'usual@example.com');
    check('reset, server hanging', await askForReset(owner.email.replace('@', '+x@')), usualReset, owner.email.replace('@', '+x@'), 'usual@example.com');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(mailbox.messages.length, since, 'nothing was delivered meanwhile');

    // Back: the retried mails arrive, each once.
    proxy.setMode('forward');
    const within = RETRY_DELAYS_MS.slice(0, 3).reduce((a, b) => a + b, 0) + 15_000;
    const stopped = await mailbox.next('stopped@example.com', { since, timeoutMs: within });
    const reset = await mailbox.next(owner.email, { since, timeoutMs: within });
    const hanging = await mailbox.next('hanging@example.com', { since, timeoutMs: within });
    assert.match(mailbox.link(stopped), /\/verify\?token=/);
    assert.match(mailbox.link(reset), /\/reset\/confirm\?token=/);
    assert.match(mailbox.link(hanging), /\/verify\?token=/);
    await new Promise((r) => setTimeout(r, 500));
    for (const to of ['stopped@example.com', 'hanging@example.com', owner.email]) {
      assert.equal(mailbox.messages.slice(since).filter((m) => m.to.includes(to)).length, 1, `one mail to ${to}`);
    }

    // Logged and counted, without a secret.
    const log = server.logText();
    const lines = log.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; mail?: { template?: string } });
    const retried = lines.filter((l) => l.msg === 'email not delivered: will retry');
    assert.ok(retried.some((l) => l.mail?.template === 'verify-email'), 'the failed sign-up mail is logged');
    assert.ok(retried.some((l) => l.mail?.template === 'reset-password'), 'the failed reset mail is logged');
    assert.ok(lines.some((l) => l.msg === 'email delivered after retrying'), 'and its delivery after retrying');
    for (const mail of [stopped, reset, hanging]) {
      const link = mailbox.link(mail);
      assert.ok(!log.includes(new URL(link).searchParams.get('token')!), 'no token in the log');
    }
    assert.doesNotMatch(log, /\?token=|has a long password/, 'no link or password in the log');
    const failures = lines.filter((l) => l.msg.startsWith('email not delivered')).length;
    assert.ok(failures >= 2);
    assert.equal((await failedMails()) - failedBefore, failures, 'each failed attempt is counted (latchkey_mail_total{outcome="failed"})');
  });
});

/**
 * A mail server that answers, but not as hoped: it refuses one recipient for good (550, quoting the
 * address, as real servers do), and takes 20 s to accept a message for another (past nodemailer's 15 s of
 * silence, so the attempt fails although the server has the message: delivery is at least once).
 */
describe('the SMTP server refusing or slow', () => {
  const REFUSED = 'no-such-person@example.com';
  const SLOW = 'slow-relay@example.com';
  let smtp: SMTPServer;
  let url: string;
  const received: string[][] = [];
  const recipients: string[] = [];

  before(async () => {
    smtp = new SMTPServer({
      authOptional: true, disabledCommands: ['STARTTLS'], logger: false, closeTimeout: 100,
      onRcptTo(address, _session, callback) {
        recipients.push(address.address);
        if (address.address !== REFUSED) return callback();
        callback(Object.assign(new Error(`5.1.1 <${REFUSED}>: Recipient address rejected: User unknown`), { responseCode: 550 }));
      },
      onData(stream, session, callback) {
        stream.resume();
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((r) => r.address);
          received.push(to);
          if (to.includes(SLOW)) setTimeout(callback, 20_000).unref();
          else callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
    url = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => smtp.close(() => resolve())));

  function mailerWithLog() {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
    const config = loadConfig({ env: {}, overrides: { env: 'test', mail: { smtpUrl: url } } });
    const mailer = createMailer(config, createLogger('debug', sink));
    return { mailer, lines, records: () => lines.map((l) => JSON.parse(l) as { msg: string; mail?: Record<string, unknown> }) };
  }

  it('does not retry a recipient the server refuses for good, and logs the refusal without the address', async () => {
    const { mailer, lines, records } = mailerWithLog();
    const before = recipients.filter((r) => r === REFUSED).length;
    await mailer.send(REFUSED, 'reset-password', { link: 'https://id.example.com/reset/confirm?token=secret-token-value' }, 'en');
    // Past the first retry's delay: no second attempt came.
    await new Promise((r) => setTimeout(r, RETRY_DELAYS_MS[0]! + 1_000));
    assert.equal(recipients.filter((r) => r === REFUSED).length - before, 1, 'one attempt, no retry');
    const refused = records().filter((l) => l.msg === 'email not delivered: refused by the mail server');
    assert.equal(refused.length, 1, lines.join('\n'));
    assert.equal(refused[0]!.mail?.responseCode, 550);
    assert.equal(refused[0]!.mail?.permanent, true);
    assert.ok(!records().some((l) => l.msg === 'email not delivered: will retry'), 'not scheduled for a retry');
    const log = lines.join('\n');
    assert.ok(!log.includes(REFUSED) && !log.includes('no-such-person'), `the address is not in the log: ${log}`);
    assert.ok(!log.includes('secret-token-value'), 'nor the link');
    await mailer.close();
  });

  it('closing logs every mail not confirmed delivered, within its bound, also one whose attempt outlasts the wait', async () => {
    const { mailer, records } = mailerWithLog();
    await mailer.send(SLOW, 'verify-email', { link: 'https://id.example.com/verify?token=x' }, 'en');
    const started = performance.now();
    await mailer.close();
    const took = performance.now() - started;
    assert.ok(took < 6_000, `close is bounded (${Math.round(took)} ms)`);
    const lost = records().filter((l) => l.msg.startsWith('email not delivered'));
    assert.deepEqual(lost.map((l) => l.mail?.template), ['verify-email'], 'the mail in its attempt is logged as not delivered');
    assert.ok(received.some((to) => to.includes(SLOW)), 'though the server has it: at least once, not exactly once');
  });
});
