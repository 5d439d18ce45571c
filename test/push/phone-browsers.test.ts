/**
 * Mobile app prompts end to end, in two real browsers (issue 12, "Tests"): Chromium is the computer, a
 * headless Firefox ESR is the phone, subscribed to Web Push through the test's own push service
 * (helpers/push-service.ts), and the server pushes to it for real. One user, in order:
 *   1. pairs the phone from "Password & security" → "Mobile app prompts" (the phone approves its test prompt
 *      from the notification; the account page finishes the enrolment by itself);
 *   2. approves a sign-in through a relying party by typing the number Chromium shows (a wrong one first,
 *      refused): the push reached Firefox's worker (aes128gcm, Urgency high, TTL the seconds left) and its
 *      notification shows no number; the ID token says amr ["pwd","mca","mfa"] at mfa;
 *   3. says "Cancel", with the app closed (the notification opens it): the relying party gets access_denied;
 *   4. says "This wasn't me": access_denied, the mail with its links, and the next sign-in finds prompts paused;
 *   5. signs out of the app: the next sign-in skips the phone at once, says why, and opens the recovery code.
 * The steps share the user and the phone, so each builds on the one before. Prompts are spaced (30 s,
 * doubling after a denial): before a sign-in that prompts, the test makes the last prompt an hour old.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ElementHandle, Page as PhonePage } from 'puppeteer-core';
import type { Page } from 'playwright-core';
import { APP, backAtApp, chromiumSuite, type AppBrowser } from '../helpers/chromium.ts';
import { clickNotification, launchFirefox, type Firefox } from '../helpers/firefox.ts';
import { PushService, type ReceivedPush } from '../helpers/push-service.ts';
import { startMailBox, type MailBox } from '../helpers/smtp.ts';
import { addQuestion } from '../helpers/two-step.ts';

const MFA = 'urn:latchkey:acr:mfa';
const PHONE_NAME = 'Firefox test phone';
const NOTIFICATION_BODY = 'Open to review and answer.';

describe('mobile app prompts with a real phone: Chromium signs in, Firefox approves', () => {
  let mailbox: MailBox;
  let push: PushService;
  let firefox: Firefox;
  let phone: PhonePage;
  let launching: Promise<Firefox> | undefined;
  before(async () => {
    [mailbox, push] = await Promise.all([startMailBox(), PushService.start()]);
    // Firefox starts while the server and Chromium do.
    launching = launchFirefox({ pushServerUrl: push.webSocketUrl });
    launching.catch(() => {});
  });
  const suite = chromiumSuite('phone-', () => ({
    mail: { smtpUrl: mailbox.url },
    twoStep: { push: { allowInsecureEndpoints: true } },
  }));
  before(async () => {
    firefox = await launching!;
    phone = await firefox.browser.newPage();
  });
  after(async () => {
    await (firefox ?? (await launching?.catch(() => undefined)))?.close();
    await push?.stop();
    await mailbox?.stop();
  });

  let user: { id: string; email: string; password: string };
  let recoveryCodes: string[] = [];
  /** Chromium signed in to the account page (the first test). */
  let accountPage: Page;
  /** The id (in its endpoint) of the subscription Firefox made at the test's push service. */
  let subscriptionId = '';

  // --- the phone (puppeteer over WebDriver BiDi) ---

  const phoneText = () => phone.evaluate(() => document.body.innerText);
  const phoneShows = (text: string, timeout = 5000) =>
    phone.waitForFunction((t) => document.body.innerText.includes(t), { timeout }, text).then(() => undefined, async () => {
      throw new Error(`the phone does not show "${text}"; it shows: ${await phoneText()}`);
    });
  /** A visible button of exactly this text, clicked as a person would. */
  async function tap(text: string): Promise<void> {
    const handle = await phone.waitForFunction((t) => [...document.querySelectorAll('button')]
      .find((b) => b.textContent?.trim() === t && b.offsetParent !== null && !b.disabled), { timeout: 5000 }, text);
    await (handle.asElement() as ElementHandle<Element>).click();
  }
  /** The notifications the app's worker shows now (asked from any page of the site). */
  type Shown = { title: string; body: string; data: { prompt: string | null } };
  const notifications = (): Promise<Shown[]> => phone.evaluate(async () => ((await (await navigator.serviceWorker.getRegistration('/app/'))?.getNotifications()) ?? [])
    .map((n) => ({ title: n.title, body: n.body, data: n.data as { prompt: string | null } })));

  /**
   * The prompt waiting for the user (the newest), pushed to the phone after `since` pushes: the push that
   * reached the phone's worker, and the notification it shows for that prompt. A tap on the notification
   * opens the prompt in the app's window, or, when none is open (`appClosed`), in a new one.
   */
  async function openFromNotification(since: number, { appClosed = false } = {}): Promise<{ received: ReceivedPush; shown: Shown }> {
    const received = await push.waitFor((p) => push.received.indexOf(p) >= since && p.id === subscriptionId && p.ack !== undefined);
    const [waiting] = await suite.server.server.services.store.pending.waitingFor(user.id, 'push');
    const promptId = waiting?.data.promptId;
    assert.ok(typeof promptId === 'string', 'a prompt waits');
    let shown: Shown | undefined;
    for (let i = 0; i < 100 && !shown; i++) {
      shown = (await notifications()).find((n) => n.data.prompt === promptId);
      if (!shown) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(shown, `the worker shows a notification for prompt ${promptId}; it shows ${JSON.stringify(await notifications())}`);
    const opened = appClosed ? firefox.browser.waitForTarget((t) => t.url().startsWith(`${suite.server.url}/app/prompt`), { timeout: 5000 }) : undefined;
    await clickNotification(firefox, NOTIFICATION_BODY);
    if (opened) {
      const previous = phone;
      phone = (await (await opened).page())!;
      await previous.close();
    }
    await phone.waitForFunction((hash) => location.pathname === '/app/prompt' && location.hash === hash, { timeout: 5000 }, `#${encodeURIComponent(promptId)}`);
    return { received, shown };
  }

  // --- the computer (Chromium) ---

  async function signInWithPassword(page: Page, who: { email: string; password: string }): Promise<void> {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password', { exact: true }).fill(who.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /**
   * A new browser signing in to the relying party (asking for mfa), up to its second step. One that will
   * prompt comes after the wait since the last prompt has passed (sooner, the server would refuse to send
   * another; the wait doubles after each denied prompt, so rather than sleep through it the test makes the
   * last prompt an hour old, as if the person came back later).
   */
  async function signInToRp({ prompts = true } = {}): Promise<AppBrowser & { checks: Awaited<ReturnType<typeof suite.rp.authorization>>['checks'] }> {
    const browser = await suite.openBrowser();
    const { url, checks } = await suite.rp.authorization({ acr_values: MFA });
    await browser.page.goto(url);
    await browser.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await browser.page.getByLabel('Email').fill(user.email);
    await browser.page.getByLabel('Password', { exact: true }).fill(user.password);
    if (prompts) {
      await suite.server.server.services.database.knex('counters').where({ key: `push:interval:${user.id}` })
        .update({ updated_at: new Date(Date.now() - 3_600_000) });
    }
    await browser.page.getByRole('button', { name: 'Sign in', exact: true }).click();
    return { ...browser, checks };
  }

  /** The phones "Password & security" lists: each one's name and state. */
  const phonesListed = (page: Page) => page.locator('#push-devices li').evaluateAll((items) =>
    items.map((li) => [li.querySelector('.item-name, strong')?.textContent?.trim(), li.querySelector('.device-state')?.textContent?.trim()]));

  /** The number the sign-in page shows while it waits for the phone. */
  async function numberOn(page: Page): Promise<string> {
    const number = page.getByRole('img', { name: /The number to type on your phone: \d+/ });
    await number.waitFor();
    await page.getByText('Check your phone').waitFor();
    const shown = await number.getAttribute('data-number');
    assert.match(shown ?? '', /^\d{3}$/);
    return shown!;
  }

  it('pairs the phone from "Password & security": the app subscribes, the test prompt arrives as a push, and once approved the account page finishes by itself', async () => {
    user = await suite.newUser();
    const s = suite.server.server.services;
    await addQuestion(s.store, (a) => s.hasher.hash(a), user.id, 'rex the dog');
    const page = accountPage = await suite.openPage();
    await page.goto(`${suite.server.url}/account/security`);
    await signInWithPassword(page, user);
    // A browser and a network never seen before: the security question, as the sign-in's risk check asks.
    await page.getByLabel('Your answer').fill('rex the dog');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
    await page.getByRole('link', { name: 'Set up Mobile app prompts' }).click();
    await page.getByRole('heading', { name: 'Pair a phone for mobile app prompts' }).waitFor();
    const code = (await page.locator('#push-code').textContent())!;
    assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    const link = (await page.locator('#push-this-device').getAttribute('href'))!;
    assert.equal(link, `${suite.server.url}/app/pair#code=${code}`);

    // The phone opens the link (what the QR code holds), names itself and pairs.
    const since = push.received.length;
    await phone.goto(link);
    await phoneShows('Pair this phone');
    assert.equal(await phone.$eval('#code', (el) => (el as HTMLInputElement).value), code);
    await phone.locator('#name').fill(PHONE_NAME);
    await tap('Pair this phone');
    await phoneShows('Approve the test prompt to finish');
    await page.getByText('Now approve the test prompt on your phone: type the number below.').waitFor();
    // The number the test prompt asks for is on the account page only: the person types it on the phone.
    const pairingNumber = (await page.getByLabel('The number to type on your phone').textContent())?.trim() ?? '';
    assert.match(pairingNumber, /^\d{3}$/);

    // It subscribed through the push service, and its test prompt came as a real push.
    const device = (await s.store.pushDevices.listForUser(user.id))[0]!;
    assert.equal(device.name, PHONE_NAME);
    const endpoint = device.subscription?.endpoint ?? '';
    assert.ok(endpoint.startsWith(`${push.origin}/push/`), `subscribed at the test's push service: ${endpoint}`);
    subscriptionId = endpoint.slice(`${push.origin}/push/`.length);
    const { received, shown } = await openFromNotification(since);
    assert.equal(shown.title, 'Test prompt from Latchkey');
    assert.equal(received.ack, 100, 'delivered to the worker');
    await phoneShows('Test prompt');
    assert.match(shown.body, /^[^\n·]+ · Firefox · Linux · 127\.0\.0\.x · \d{1,2}:\d{2}(\s?[AP]M)?\nOpen to review and answer\.$/, `no number in the notification: ${shown.body}`);
    await phone.locator('#number').fill(pairingNumber);
    await tap('Approve');
    await phoneShows('Approved. This phone will now get your sign-in prompts.');

    // The account page polls, and finishes the enrolment: recovery codes, then the phone in the list.
    await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor({ timeout: 8000 });
    recoveryCodes = await page.locator('#recovery-codes code').allTextContents();
    assert.equal(recoveryCodes.length, 10);
    await page.getByRole('link', { name: 'I have saved my codes' }).click();
    await page.waitForURL((u) => u.pathname === '/account/security');
    assert.deepEqual(await phonesListed(page), [[PHONE_NAME, 'Active: gets notifications']]);
    const mail = await mailbox.next(user.email);
    assert.match(mail.subject, /two-step verification was changed/);
    assert.ok(mail.text.includes(PHONE_NAME), mail.text);
    assert.deepEqual(suite.violations, []);
  });

  it('approves a sign-in: the encrypted push carries no number, a wrong number is refused, the right one lets Chromium continue with amr ["pwd","mca","mfa"]', async () => {
    const since = push.received.length;
    const { page, callbacks, checks } = await signInToRp();
    const number = await numberOn(page);

    const { received, shown } = await openFromNotification(since);
    assert.equal(received.status, 201);
    assert.equal(received.encoding, 'aes128gcm');
    assert.equal(received.urgency, 'high');
    assert.ok(received.ttl !== undefined && received.ttl > 60 && received.ttl <= 120, `TTL ${received.ttl}: the prompt's seconds left`);
    assert.equal(received.vapid?.aud, push.origin);
    assert.equal(received.ack, 100, 'delivered to the worker');
    assert.equal(shown.title, 'Are you trying to sign in?');
    // Who asks, from where and when, fetched over the signed API; nothing else, so never the number.
    assert.match(shown.body, /^Notes · Chrome · Linux · 127\.0\.0\.x · \d{1,2}:\d{2}(\s?[AP]M)?\nOpen to review and answer\.$/, shown.body);
    assert.deepEqual(Object.keys(shown.data), ['prompt'], 'the notification keeps only the prompt id');

    // The approval screen: what asks, from where; the number is typed, a wrong one first.
    await phoneShows('Are you trying to sign in?');
    assert.match(await phoneText(), /\nApp\nNotes\nBrowser\nChrome on Linux\nPlace\n127\.0\.0\.x\n/, 'the app, the browser and system, the masked address');
    const wrong = String((Number(number) + 1) % 1000).padStart(3, '0');
    await phone.locator('#number').fill(wrong);
    await tap('Approve');
    await phoneShows('That is not the number on the sign-in screen. 2 attempts left.');
    const [still] = await suite.server.server.services.store.pending.waitingFor(user.id, 'push');
    assert.equal(still?.attemptsLeft, 2, 'the prompt still waits, one attempt spent');
    await phone.locator('#number').fill(number);
    await tap('Approve');
    await phoneShows('Approved. You can go back to your computer.');

    // Chromium continues by itself, to the relying party.
    const landed = await backAtApp(page, callbacks);
    const tokens = await suite.rp.callback(landed, checks);
    const claims = tokens.claims()!;
    assert.deepEqual(claims.amr, ['pwd', 'mca', 'mfa']);
    assert.equal(claims.acr, MFA);
    assert.equal(claims.sub, user.id);
  });

  it('"Cancel" in the app ends the sign-in: the relying party gets access_denied (the app was closed: the notification opens it)', async () => {
    // The phone is elsewhere (a page of the same site outside the app): no window of the app is open.
    await phone.goto(`${suite.server.url}/reset`);
    const since = push.received.length;
    const { page, callbacks } = await signInToRp();
    await numberOn(page);
    await openFromNotification(since, { appClosed: true });
    await tap('Cancel');
    await phoneShows('Cancelled. The sign-in was not approved.');
    const landed = new URL(await backAtApp(page, callbacks));
    assert.equal(landed.origin + landed.pathname, `${APP}/cb`);
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.equal(landed.searchParams.get('code'), null);
  });

  it('"This wasn\'t me" ends the sign-in, mails the links to change the password and sign out everywhere, and pauses prompts', async () => {
    const since = push.received.length;
    const mails = mailbox.messages.length;
    const { page, callbacks } = await signInToRp();
    await numberOn(page);
    await openFromNotification(since);
    await tap('This wasn’t me');
    await phoneShows('The sign-in was blocked');
    const landed = new URL(await backAtApp(page, callbacks));
    assert.equal(landed.searchParams.get('error'), 'access_denied');

    const mail = await mailbox.next(user.email, { since: mails });
    assert.match(mail.subject, /Someone tried to sign in to your .* account/);
    assert.ok(mail.text.includes(PHONE_NAME), mail.text);
    assert.ok(mail.text.includes(`${suite.server.url}/account/password`), 'the link to change the password');
    assert.match(mail.text, new RegExp(`${suite.server.url}/not-me\\?token=\\S+`), 'the link to sign out everywhere');
    const events = await suite.server.server.services.store.events.forUser(user.id);
    assert.ok(events.some((e) => e.type === 'push.denied_not_me'), 'a security event');

    // The next sign-in sends no prompt: it says they are paused and offers another way.
    const pushes = push.received.length;
    const next = await signInToRp({ prompts: false });
    await next.page.getByRole('alert').filter({ hasText: 'Prompts to your phone are paused for a while' }).waitFor();
    assert.equal(push.received.length, pushes, 'no push while paused');
    assert.deepEqual(await suite.server.server.services.store.pending.waitingFor(user.id, 'push'), [], 'no prompt waits');
    await next.page.getByRole('link', { name: 'Use a recovery code' }).click();
    await next.page.getByLabel('Enter one of your recovery codes').waitFor();
  });

  it('signing out of the app: the next sign-in skips the phone at once, says why, and opens the recovery code', async () => {
    await phone.goto(`${suite.server.url}/app/`);
    await phoneShows(PHONE_NAME);
    await tap('Sign out of this app');
    await tap('Sign out');
    await phoneShows('You signed out of this app.');
    await phoneShows('This app is not paired yet');

    const [device] = await suite.server.server.services.store.pushDevices.listForUser(user.id);
    assert.equal(device?.state, 'signed-out');
    assert.equal(device?.subscription, undefined, 'its subscription is forgotten');

    const pushes = push.received.length;
    const { page, callbacks, checks } = await signInToRp({ prompts: false });
    await page.getByText('Your phone app is signed out, so we\'ll verify another way.').waitFor();
    const field = page.getByLabel('Enter one of your recovery codes');
    assert.equal(await field.isVisible(), true, 'the recovery code opens at once');
    await field.fill(recoveryCodes[0]!);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByText('You used a recovery code').waitFor();
    await page.getByRole('button', { name: 'Continue to Notes' }).click();
    const tokens = await suite.rp.callback(await backAtApp(page, callbacks), checks);
    assert.equal(tokens.claims()!.acr, MFA);
    assert.ok(!(tokens.claims()!.amr as string[]).includes('mca'));
    assert.equal(push.received.length, pushes, 'nothing pushed to a signed-out phone');

    // The account page lists the phone as signed out.
    await accountPage.goto(`${suite.server.url}/account/security`);
    assert.deepEqual(await phonesListed(accountPage), [[PHONE_NAME, 'Signed out']]);
    assert.deepEqual(suite.violations, []);
  });
});
