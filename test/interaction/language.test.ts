import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fromAcceptLanguage, fromUiLocales, matchLanguage } from '../../src/i18n.ts';
import { CookieClient, findForm, type Page } from '../helpers/browser.ts';
import type { RelyingParty } from '../helpers/rp.ts';
import { startMailedApp, type MailedApp } from '../helpers/mailed-app.ts';
import type { MailBox } from '../helpers/smtp.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** A browser without JavaScript whose every request says which languages it prefers. */
class Browser extends CookieClient {
  constructor(origin: string, public languages: string) {
    super(origin);
  }

  override request(url: string, init: Parameters<CookieClient['request']>[1] = {}): Promise<Page> {
    return super.request(url, { ...init, headers: { 'accept-language': this.languages, ...init.headers } });
  }
}

const htmlLang = (page: Page) => /<html lang="([^"]*)">/.exec(page.body)?.[1];
const heading = (page: Page) => /<h1>([^<]*)<\/h1>/.exec(page.body)?.[1];

describe('the language of pages and mails: the picker, then ui_locales, then Accept-Language, then English', () => {
  let server: TestServer;
  let mailbox: MailBox;
  let rp: RelyingParty;
  const store = () => server.server.services.store;
  const storedLanguage = async (email: string) => (await store().users.findByEmail(email))!.language;

  let shop: MailedApp;
  before(async () => {
    shop = await startMailedApp('Shop');
    ({ server, mailbox, rp } = shop);
  });
  after(() => shop.stop());

  /** The sign-in page an app's authorization request leads this browser to. */
  async function signInPage(browser: CookieClient, params: Record<string, string> = {}): Promise<Page> {
    const page = await browser.follow((await rp.authorization(params)).url);
    assert.equal(page.status, 200, `${page.url}: ${page.body.slice(0, 300)}`);
    assert.match(new URL(page.url).pathname, /^\/interaction\//);
    return page;
  }

  /** Posts the page's language picker with `fields` over its own; the answer, not followed. */
  function pick(browser: CookieClient, page: Page, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Page> {
    const form = findForm(page.body, '/language');
    return browser.request('/language', { form: { ...form.hidden, ...fields }, headers });
  }

  it('reads the languages of Accept-Language: German for de and de-AT, English for en-US and for languages it does not have', async () => {
    for (const [languages, lang, title] of [
      ['de', 'de', 'Anmelden'],
      ['de-AT,de;q=0.9', 'de', 'Anmelden'],
      ['en-US,en;q=0.9', 'en', 'Sign in'],
      ['fr-FR, it;q=0.8', 'en', 'Sign in'],
      ['', 'en', 'Sign in'],
      ['*', 'en', 'Sign in'],
      ['de;q=garbage, ;;;, q=1', 'en', 'Sign in'],
    ] as const) {
      const page = await signInPage(new Browser(server.url, languages));
      assert.equal(htmlLang(page), lang, `Accept-Language: ${languages}`);
      assert.equal(heading(page), title, `Accept-Language: ${languages}`);
    }
    const german = await signInPage(new Browser(server.url, 'de'));
    assert.match(german.body, /<label for="email">E-Mail<\/label>/);
    assert.match(german.body, /<label for="password">Passwort<\/label>/);
    assert.match(german.body, /<button type="submit">Anmelden<\/button>/);
  });

  it('honours q-values: the highest supported one wins, q=0 means "not this one", a tie goes to the first', async () => {
    for (const [languages, lang] of [
      ['en;q=0.5, de;q=0.8', 'de'],
      ['de;q=0.3, en', 'en'],
      ['fr, de;q=0.9, en;q=0.8', 'de'],
      ['de;q=0, en;q=0.1', 'en'],
      ['de;q=0', 'en'],
      ['en;q=0.7, de;q=0.7', 'en'],
      ['DE-ch;Q=0.9, en;q=0.2', 'de'],
    ] as const) {
      assert.equal(htmlLang(await signInPage(new Browser(server.url, languages))), lang, `Accept-Language: ${languages}`);
    }
    assert.equal(fromAcceptLanguage(`${'xx;q=0.9, '.repeat(500)}de`), undefined, 'a long header is read only so far');
    assert.equal(matchLanguage('de-Latn-AT'), 'de');
    assert.equal(matchLanguage('deu'), undefined);
    assert.equal(matchLanguage('../en'), undefined);
    assert.equal(fromUiLocales('fr-CA  de en'), 'de');
  });

  it("says which headers a page depends on (Vary), and advertises its languages in discovery", async () => {
    const page = await signInPage(new Browser(server.url, 'de'));
    const vary = (page.headers.get('vary') ?? '').toLowerCase();
    assert.match(vary, /accept-language/);
    assert.match(vary, /cookie/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const meta = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.deepEqual(meta.ui_locales_supported, ['de', 'en']);
    assert.deepEqual(meta.claim_types_supported, ['normal'], 'the rest of the discovery defaults stay');
  });

  it("speaks the app's ui_locales on its sign-in pages, over the browser's languages", async () => {
    const browser = new Browser(server.url, 'en-US,en;q=0.9');
    const page = await signInPage(browser, { ui_locales: 'fr-CA de-CH en' });
    assert.equal(htmlLang(page), 'de');
    assert.equal(heading(page), 'Anmelden');
    // The answer to a wrong password, and the pages the sign-in page links to, stay in the app's language.
    const wrong = await browser.submit(page, '/login', { email: 'nobody@example.com', password: 'not the password' });
    assert.equal(htmlLang(wrong), 'de');
    const uid = /\/interaction\/([^/]+)\//.exec(findForm(page.body, '/login').action)![1]!;
    assert.equal(htmlLang(await browser.follow(`/interaction/${uid}/reset`)), 'de');
    // A page outside this sign-in has only the browser to go by.
    assert.equal(htmlLang(await browser.follow('/reset')), 'en');
    // ui_locales with nothing supported leaves the browser's choice.
    assert.equal(htmlLang(await signInPage(new Browser(server.url, 'de'), { ui_locales: 'fr ja' })), 'de');
    // A protocol error page of /auth follows ui_locales too.
    const error = await browser.follow(`/auth?client_id=${rp.client.clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://evil.example/cb')}&ui_locales=de`);
    assert.equal(error.status, 400);
    assert.equal(htmlLang(error), 'de');
    // So does a logout request's ("Sign out?" needs a session).
    const signedIn = new Browser(server.url, 'en');
    await rp.signIn(signedIn, await server.newUser('bye'));
    assert.match((await signedIn.follow('/session/end')).body, /<h1>Sign out\?<\/h1>/);
    const logout = await signedIn.follow('/session/end?ui_locales=de');
    assert.equal(htmlLang(logout), 'de');
    assert.match(logout.body, /<h1>Abmelden\?<\/h1>/);
  });

  it("speaks the browser's language on oidc-provider's own pages (device flow, logout, unknown paths)", async () => {
    const browser = new Browser(server.url, 'de');
    const device = await browser.follow('/device');
    assert.equal(htmlLang(device), 'de');
    assert.equal(heading(device), 'Gerät verbinden');
    const missing = await browser.follow('/no-such-page');
    assert.equal(missing.status, 404);
    assert.equal(htmlLang(missing), 'de');
    // Their pages carry the picker too, with a token that the picker's POST accepts.
    const answer = await pick(browser, device, { language: 'en' });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.get('location'), '/device');
    assert.equal(heading(await browser.follow('/device')), 'Connect a device');
  });

  it("the picker's choice beats ui_locales and Accept-Language, and goes back to the page it was on", async () => {
    const browser = new Browser(server.url, 'de');
    const page = await signInPage(browser, { ui_locales: 'de' });
    assert.equal(htmlLang(page), 'de');
    const picker = findForm(page.body, '/language');
    const here = new URL(page.url);
    assert.equal(picker.hidden.return, here.pathname, 'the picker returns to this page');
    assert.match(picker.inner, /<option value="de" lang="de" selected>Deutsch<\/option>/);
    assert.match(picker.inner, /<option value="en" lang="en">English<\/option>/);

    const answer = await pick(browser, page, { language: 'en' });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.get('location'), picker.hidden.return);
    const cookie = answer.headers.getSetCookie().find((c) => c.startsWith('lang='));
    assert.ok(cookie, 'sets the lang cookie');
    assert.match(cookie, /^lang=en;/);
    assert.match(cookie, /; path=\//i);
    assert.match(cookie, /; httponly/i);
    assert.match(cookie, /; samesite=lax/i);
    const expires = /; expires=([^;]+)/i.exec(cookie)?.[1];
    assert.ok(expires && Date.parse(expires) > Date.now() + 300 * 86400_000, `long-lived, got ${expires}`);
    assert.doesNotMatch(cookie, /; secure/i, 'not Secure on a plain-http issuer');

    const back = await browser.follow(answer.headers.get('location')!);
    assert.equal(htmlLang(back), 'en');
    assert.equal(heading(back), 'Sign in');
    // A new sign-in from an app that asks for German, in a browser that prefers German: still the choice.
    assert.equal(htmlLang(await signInPage(browser, { ui_locales: 'de' })), 'en');
    // And choosing again changes it again.
    const again = await pick(browser, back, { language: 'de' });
    assert.equal(htmlLang(await browser.follow(again.headers.get('location')!)), 'de');
  });

  it('returns only to a local path: another site, "//host", "/\\host" or garbage goes to the account page', async () => {
    const browser = new Browser(server.url, 'en');
    const page = await browser.follow('/reset');
    for (const value of ['https://evil.example/x', '//evil.example/x', '/\\evil.example/x', '\\\\evil.example', 'javascript:alert(1)',
      'evil.example', '', ' /reset', '/reset\r\nSet-Cookie: a=b', `${server.url}/reset`]) {
      const answer = await pick(browser, page, { language: 'en', return: value });
      assert.equal(answer.status, 303, JSON.stringify(value));
      assert.equal(answer.headers.get('location'), '/account', JSON.stringify(value));
    }
    const kept = await pick(browser, page, { language: 'en', return: '/reset?from=picker' });
    assert.equal(kept.headers.get('location'), '/reset?from=picker');
    const { return: _none, ...withoutReturn } = findForm(page.body, '/language').hidden;
    const noReturn = await browser.request('/language', { form: { ...withoutReturn, language: 'en' } });
    assert.equal(noReturn.headers.get('location'), '/account');
  });

  it("never writes a page's query into the page; the query comes back from the Referer of the same page, so a mailed link survives", async () => {
    const browser = new Browser(server.url, 'en');
    const crafted = await browser.follow('/reset?note=Evil');
    assert.equal(findForm(crafted.body, '/language').hidden.return, '/reset');
    assert.doesNotMatch(crafted.body, /Evil/);
    const from = (referer: string) => pick(browser, crafted, { language: 'en' }, { referer });
    assert.equal((await from(`${server.url}/reset?note=Evil`)).headers.get('location'), '/reset?note=Evil');
    assert.equal((await from('https://evil.example/reset?next=//evil.example')).headers.get('location'), '/reset', 'a foreign Referer is not used');
    assert.equal((await from(`${server.url}/account?x=1`)).headers.get('location'), '/reset', 'nor one of another page');

    // A reset link opened in German, switched to English: the same link, still working.
    const user = await server.newUser('link');
    const link = new URL(mailbox.link(await resetMail(new Browser(server.url, 'en'), user.email)));
    const german = new Browser(server.url, 'de');
    const form = await german.follow(`${link.pathname}${link.search}`);
    assert.equal(htmlLang(form), 'de');
    assert.doesNotMatch(findForm(form.body, '/language').hidden.return!, /token/);
    const answer = await pick(german, form, { language: 'en' }, { referer: link.toString() });
    assert.equal(answer.headers.get('location'), `${link.pathname}${link.search}`);
    const back = await german.follow(answer.headers.get('location')!);
    assert.equal(back.status, 200);
    assert.equal(htmlLang(back), 'en');
    assert.match(back.body, /action="\/reset\/confirm"/, 'the form for a new password, not a dead link');
  });

  it('refuses a language it does not have with a clear 400 page, and a form without its CSRF token or from another site', async () => {
    const browser = new Browser(server.url, 'en');
    const page = await browser.follow('/reset');
    for (const language of ['xx', 'de-AT', '<script>', '']) {
      const answer = await pick(browser, page, { language });
      assert.equal(answer.status, 400, JSON.stringify(language));
      assert.match(answer.body, /This language is not available\. Choose one from the list\./);
      assert.equal(answer.headers.getSetCookie().filter((c) => c.startsWith('lang=')).length, 0);
    }
    const german = new Browser(server.url, 'de');
    const refused = await pick(german, await german.follow('/reset'), { language: 'xx' });
    assert.equal(refused.status, 400);
    assert.match(refused.body, /Diese Sprache ist nicht verfügbar/, 'in the language of the page');

    const noToken = await browser.request('/language', { form: { language: 'de', return: '/reset' } });
    assert.equal(noToken.status, 403);
    const wrongToken = await pick(browser, page, { language: 'de', csrf: 'x'.repeat(43) });
    assert.equal(wrongToken.status, 403);
    const otherSite = await pick(browser, page, { language: 'de' }, { origin: 'https://evil.example' });
    assert.equal(otherSite.status, 403);
    for (const answer of [noToken, wrongToken, otherSite]) {
      assert.equal(answer.headers.getSetCookie().filter((c) => c.startsWith('lang=')).length, 0, 'no cookie');
    }
    assert.equal(htmlLang(await browser.follow('/reset')), 'en', 'nothing changed');
  });

  /** Asks for a password-reset link for `email` from this browser; the mail it gets. */
  async function resetMail(browser: CookieClient, email: string) {
    const user = await store().users.findByEmail(email);
    await server.server.services.database.knex('counters').where({ key: `mail:reset:${user!.id}` }).delete();
    const since = mailbox.messages.length;
    const page = await browser.follow('/reset');
    assert.equal((await browser.submit(page, '/reset', { email })).status, 200);
    return mailbox.next(email, { since });
  }

  it('mails a user who signed up in German in German, and one who signed up in English in English', async () => {
    for (const [languages, subject, greeting] of [
      ['de-DE,de;q=0.9', /^Bestätigen Sie Ihre E-Mail-Adresse für Latchkey$/, /^Guten Tag,/],
      ['en-GB', /^Confirm your email address for Latchkey$/, /^Hello,/],
    ] as const) {
      const browser = new Browser(server.url, languages);
      const email = `signup.${languages.slice(0, 2)}@example.com`;
      const since = mailbox.messages.length;
      const form = await browser.follow('/signup');
      const sent = await browser.submit(form, '/signup', { name: '', email, password: 'quiet river lantern 93' });
      assert.equal(sent.status, 200);
      const mail = await mailbox.next(email, { since });
      assert.match(mail.subject, subject);
      assert.match(mail.text, greeting);
      assert.equal(await storedLanguage(email), languages.slice(0, 2));
      assert.match(mail.raw, new RegExp(`<html lang=(3D)?"${languages.slice(0, 2)}">`), 'the HTML part (quoted-printable) says its language');
    }
  });

  it("mails follow the user's language, not the language of whoever asks: the sign-in's, then the picker's", async () => {
    const user = await server.newUser('lang');
    assert.equal(await storedLanguage(user.email), null, 'an account made without a request has no language yet');
    // An English browser asks for a reset link: no language stored, so the request's.
    assert.match((await resetMail(new Browser(server.url, 'en'), user.email)).subject, /^Reset your Latchkey password$/);

    // The user signs in to an app that asks for German: their language is German from now on.
    const browser = new Browser(server.url, 'en');
    await rp.signIn(browser, user, { ui_locales: 'de' });
    assert.equal(await storedLanguage(user.email), 'de');
    const german = await resetMail(new Browser(server.url, 'en-US'), user.email);
    assert.match(german.subject, /^Setzen Sie Ihr Latchkey-Passwort zurück$/, 'German, though an English browser asked');
    assert.match(german.text, /^Guten Tag,/);

    // Signed in, they choose English on the picker: the mails follow.
    const page = await browser.follow('/reset');
    const answer = await pick(browser, page, { language: 'en', return: '/reset' });
    assert.equal(answer.status, 303);
    assert.equal(await storedLanguage(user.email), 'en');
    assert.match((await resetMail(new Browser(server.url, 'de'), user.email)).subject, /^Reset your Latchkey password$/);

    // Someone who is not signed in choosing a language changes no account.
    const stranger = new Browser(server.url, 'en');
    await pick(stranger, await stranger.follow('/reset'), { language: 'de' });
    assert.equal(await storedLanguage(user.email), 'en');

    // A sign-in in German (the picker's cookie) makes it German again.
    const pickedGerman = new Browser(server.url, 'en');
    await pick(pickedGerman, await pickedGerman.follow('/reset'), { language: 'de' });
    const before = (await store().users.findByEmail(user.email))!.updatedAt.getTime();
    await rp.signIn(pickedGerman, user);
    assert.equal(await storedLanguage(user.email), 'de');
    assert.equal((await store().users.findByEmail(user.email))!.updatedAt.getTime(), before, 'the language is not a profile change (updated_at)');
  });

  it("writes a notice in the user's language, its words and time included, though the page that caused it was English", async () => {
    const user = await server.newUser('notice');
    const browser = new Browser(server.url, 'de');
    const login = await browser.follow('/account/verification');
    await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(await storedLanguage(user.email), 'de');
    // The same session, now in a browser set to English (no picker: the stored language stays).
    browser.languages = 'en';
    await store().users.setVerificationPreference(user.id, 'always');
    const page = await browser.follow('/account/verification');
    assert.equal(htmlLang(page), 'en');
    const since = mailbox.messages.length;
    const done = await browser.submit(page, '/account/verification', { preference: 'risky' });
    assert.equal(done.status, 200);
    const mail = await mailbox.next(user.email, { since });
    assert.match(mail.subject, /^Die Bestätigungseinstellung Ihres Latchkey-Kontos wurde geändert$/);
    assert.match(mail.text.replace(/=?\r?\n/g, ' '), /Am \d{1,2}\. \S+ \d{4}, \d\d:\d\d UTC wurde die Einstellung/, 'the time in German words');
    assert.match(mail.text.replace(/\s+/g, ' '), /geändert in: Nur bestätigen, wenn eine Anmeldung riskant wirkt\./, 'the setting in German words');
  });

  it('writes the times of a German page in German words, keeping <time datetime>', async () => {
    const user = await server.newUser('zeit');
    const browser = new Browser(server.url, 'de');
    const login = await browser.follow('/account/activity');
    assert.equal(htmlLang(login), 'de');
    const activity = await browser.submit(login, '/login', { email: user.email, password: user.password });
    assert.equal(new URL(activity.url).pathname, '/account/activity');
    assert.equal(htmlLang(activity), 'de');
    const months = ['Jan.', 'Feb.', 'März', 'Apr.', 'Mai', 'Juni', 'Juli', 'Aug.', 'Sept.', 'Okt.', 'Nov.', 'Dez.'];
    const found = /<time datetime="([^"]+)">(\d{1,2})\. (\S+) (\d{4}), (\d\d:\d\d) UTC<\/time>/.exec(activity.body);
    assert.ok(found, `a German <time> on the activity page: ${activity.body.slice(0, 1500)}`);
    const when = new Date(found[1]!);
    assert.equal(Number(found[2]), when.getUTCDate());
    assert.equal(found[3], months[when.getUTCMonth()]);
    assert.equal(found[5], found[1]!.slice(11, 16));
  });
});

describe('the language cookie behind TLS', () => {
  let https: TestServer;
  before(async () => {
    https = await startTestServer({ config: { issuer: 'https://login.example.test', proxy: { trusted: [], tlsTerminated: true } } });
  });
  after(() => https.stop());

  it('is __Host-lang, Secure, HttpOnly, SameSite=Lax, Path=/ under an https issuer; a plain "lang" cookie is not read there', async () => {
    const base = `http://127.0.0.1:${https.config.port}`;
    const page = await fetch(`${base}/reset`, { headers: { accept: 'text/html' } });
    const csrfCookie = page.headers.getSetCookie().find((c) => c.startsWith('__Host-lk.csrf='))!.split(';')[0]!;
    const form = findForm(await page.text(), '/language');
    const answer = await fetch(`${base}/language`, {
      method: 'POST', redirect: 'manual',
      headers: { cookie: csrfCookie, 'content-type': 'application/x-www-form-urlencoded', origin: 'https://login.example.test' },
      body: new URLSearchParams({ ...form.hidden, language: 'de' }),
    });
    assert.equal(answer.status, 303);
    assert.equal(answer.headers.get('location'), '/reset');
    const cookie = answer.headers.getSetCookie().find((c) => c.includes('lang='));
    assert.ok(cookie?.startsWith('__Host-lang=de;'), cookie);
    assert.match(cookie!, /;\s*secure/i);
    assert.match(cookie!, /;\s*httponly/i);
    assert.match(cookie!, /;\s*samesite=lax/i);
    assert.match(cookie!, /;\s*path=\/(;|$)/i);
    assert.doesNotMatch(cookie!, /domain=/i);
    const lang = async (cookieHeader: string) =>
      htmlLang({ body: await (await fetch(`${base}/reset`, { headers: { accept: 'text/html', 'accept-language': 'en', cookie: cookieHeader } })).text() } as Page);
    assert.equal(await lang('__Host-lang=de'), 'de');
    assert.equal(await lang('lang=de'), 'en', 'only the prefixed name counts behind TLS');
  });
});
