import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CookieClient } from '../helpers/browser.ts';
import { chromiumSuite } from '../helpers/chromium.ts';
import { signInToAccount } from './helpers.ts';

/** A `<time datetime>` as the server writes it: the ISO instant and the time in words, in UTC. */
const TIME = /<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)">(\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC)<\/time>/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

describe('times on the account page: UTC in the page, the viewer\'s time zone in the browser', () => {
  const suite = chromiumSuite('time');

  it('writes each time as <time datetime> with the UTC time in words, and loads the script that localises it', async () => {
    const user = await suite.newUser();
    const browser = new CookieClient(suite.server.url);
    const activity = await signInToAccount(browser, user, '/account/activity');
    const found = TIME.exec(activity.body);
    assert.ok(found, `a <time datetime> on the activity page: ${activity.body.slice(0, 2000)}`);
    const [, iso, words] = found;
    const when = new Date(iso!);
    assert.ok(Math.abs(Date.now() - when.getTime()) < 10 * 60_000, `the sign-in just now, got ${iso}`);
    assert.equal(words, `${when.getUTCDate()} ${MONTHS[when.getUTCMonth()]} ${when.getUTCFullYear()}, ${iso!.slice(11, 16)} UTC`, 'the words say the same instant, in UTC');
    assert.match(activity.body, /<script src="\/assets\/local-time\.js" defer><\/script>/);

    // A time inside a sentence keeps its markup, and the sentence around it is still escaped text.
    const sessions = await browser.follow('/account/sessions');
    assert.match(sessions.body, new RegExp(`Last active ${TIME.source}`));
    assert.doesNotMatch(sessions.body, /&lt;time/);

    const script = await fetch(`${suite.server.url}/assets/local-time.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /text\/javascript/);
    const source = await script.text();
    assert.match(source, /time\[datetime\]/);
    assert.match(source, /Intl\.DateTimeFormat/);
  });

  it('shows the times in the browser\'s own time zone once the script ran (Asia/Kolkata, UTC+5:30)', async () => {
    const user = await suite.newUser();
    const page = await suite.openPage({ timezoneId: 'Asia/Kolkata' });

    await page.goto(`${suite.server.url}/account/activity`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/account/activity');
    const time = page.locator('#activity time[datetime]').first();
    await time.waitFor();
    const shown = { datetime: (await time.getAttribute('datetime'))!, text: (await time.textContent())!, title: await time.getAttribute('title') };

    const when = new Date(shown.datetime);
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: 'Asia/Kolkata', hour: 'numeric', minute: '2-digit', hourCycle: 'h12' })
      .formatToParts(when).map((p) => [p.type, p.value]));
    assert.doesNotMatch(shown.text, /UTC/, `rewritten by the script, got "${shown.text}"`);
    assert.match(shown.text, /GMT\+5:30/, 'says which time zone');
    assert.ok(shown.text.includes(`${parts.hour}:${parts.minute}`), `${parts.hour}:${parts.minute} in Kolkata, got "${shown.text}"`);
    assert.match(shown.title ?? '', /^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC$/, 'the UTC time stays as the tooltip');
    assert.deepEqual(suite.violations, [], 'no CSP violations or page errors');
  });
});
