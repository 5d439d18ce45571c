import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { chromiumSuite } from '../helpers/chromium.ts';
import { addQuestion } from '../helpers/two-step.ts';

/** A brand colour chosen for white pages: 3:1 at most on the dark card, so dark mode needs a lighter shade. */
const BRAND = '#1f3a93';

type Rgb = [number, number, number];

/** A computed CSS colour ("rgb(…)", "rgba(…)" or "color(srgb …)") as 0–255 channels. */
function rgbOf(css: string): Rgb {
  const srgb = /^color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)/.exec(css);
  if (srgb) return [1, 2, 3].map((i) => Number(srgb[i]) * 255) as Rgb;
  const rgb = /^rgba?\(([\d.]+),? ([\d.]+),? ([\d.]+)/.exec(css);
  assert.ok(rgb, `a colour, got ${css}`);
  return [1, 2, 3].map((i) => Number(rgb[i])) as Rgb;
}

/** WCAG 2 relative luminance and contrast ratio. */
function luminance(css: string): number {
  const [r, g, b] = rgbOf(css).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as Rgb;
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The computed styles the tests look at, of the first element matching each selector. */
async function styles(page: Page, picks: Record<string, [string, string]>): Promise<Record<string, string>> {
  return page.evaluate((p) => {
    const out: Record<string, string> = {};
    for (const [name, [selector, property]] of Object.entries(p)) {
      const el = document.querySelector(selector);
      out[name] = el ? getComputedStyle(el).getPropertyValue(property) : `no ${selector}`;
    }
    return out;
  }, picks);
}

describe('the pages in light and dark mode, in Chromium', () => {
  const suite = chromiumSuite('scheme', () => ({ branding: { primaryColor: BRAND } }));

  const openScheme = (colorScheme: 'light' | 'dark'): Promise<Page> => suite.openPage({ colorScheme });

  for (const scheme of ['light', 'dark'] as const) {
    it(`${scheme}: the sign-in page follows the scheme, reads at 4.5:1, and its controls use the page's font`, async () => {
      const page = await openScheme(scheme);
      await page.goto((await suite.rp.authorization()).url);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      const s = await styles(page, {
        pageBg: ['html', 'background-color'],
        card: ['main.card', 'background-color'],
        text: ['h1', 'color'],
        lead: ['p.lead', 'color'],
        link: ['p.links a', 'color'],
        font: ['html', 'font-family'],
        buttonFont: ['button[type=submit]', 'font-family'],
        buttonBg: ['button[type=submit]', 'background-color'],
        buttonText: ['button[type=submit]', 'color'],
        inputFont: ['input#email', 'font-family'],
        inputBg: ['input#email', 'background-color'],
        inputText: ['input#email', 'color'],
      });
      if (scheme === 'dark') {
        assert.ok(luminance(s.pageBg!) < 0.05, `a dark page, got ${s.pageBg}`);
        assert.ok(luminance(s.card!) < 0.05, `a dark card, got ${s.card}`);
        assert.notDeepEqual(rgbOf(s.buttonBg!), [0x1f, 0x3a, 0x93], 'the brand colour is too dark for the dark card: a lighter shade is used');
        const [r, g, b] = rgbOf(s.buttonBg!);
        assert.ok(b > r && b > g, `still the brand's blue, got ${s.buttonBg}`);
      } else {
        assert.ok(luminance(s.pageBg!) > 0.8, `a light page, got ${s.pageBg}`);
        assert.ok(luminance(s.card!) > 0.9, `a light card, got ${s.card}`);
        assert.deepEqual(rgbOf(s.buttonBg!), [0x1f, 0x3a, 0x93], 'the configured brand colour, as it is, on light pages');
      }
      assert.equal(s.buttonFont, s.font, 'the button inherits the page font');
      assert.equal(s.inputFont, s.font, 'so does the input');
      assert.doesNotMatch(s.buttonFont!, /arial/i);
      for (const [what, fg, bg] of [['text', s.text, s.card], ['muted text', s.lead, s.card], ['link', s.link, s.card], ['button', s.buttonText, s.buttonBg], ['input', s.inputText, s.inputBg]]) {
        const ratio = contrast(fg!, bg!);
        assert.ok(ratio >= 4.5, `${scheme}: ${what} ${fg} on ${bg} is ${ratio.toFixed(2)}:1, below 4.5:1`);
      }
      assert.deepEqual(suite.violations, []);
    });

    it(`${scheme}: the reasons a sign-in looks risky are a warning, not a success message`, async () => {
      const user = await suite.newUser();
      await addQuestion(suite.server.server.services.store, (a) => suite.server.server.services.hasher.hash(a), user.id);
      const page = await openScheme(scheme);
      await page.goto((await suite.rp.authorization()).url);
      await page.getByLabel('Email').fill(user.email);
      await page.getByLabel('Password', { exact: true }).fill(user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText("We don't recognise this device.").waitFor();
      const s = await styles(page, { bg: ['#why', 'background-color'], text: ['#why', 'color'], card: ['main.card', 'background-color'], edge: ['#why', 'border-left-color'] });
      const [r, g, b] = rgbOf(s.bg!);
      assert.ok(r >= g && g > b, `an amber box, not a green (success) one: ${s.bg}`);
      const ratio = contrast(s.text!, s.bg!);
      assert.ok(ratio >= 4.5, `its text ${s.text} on ${s.bg} is ${ratio.toFixed(2)}:1`);
      assert.notEqual(s.edge, s.bg, 'with a visible edge');
      assert.deepEqual(suite.violations, []);
    });
  }
});
