/**
 * The brand colour as a stylesheet (/assets/theme.css; inline styles would break the CSP), for the light and
 * the dark colour scheme.
 *
 * The configured colour is used for links and as the background of buttons, so it must stay readable on the
 * page's cards in both schemes (WCAG AA: 4.5:1). A colour chosen for a white page is often too dark for a dark
 * one (the default #2f5bd3 has 2.8:1 on the dark card). The variant is computed here, on the server, rather
 * than with CSS `color-mix()`: CSS cannot measure contrast, so a fixed mix would wash out colours that were
 * already fine and could still leave very dark ones unreadable. Here the colour is mixed towards white (dark
 * scheme) or black (light scheme) only as far as needed to reach 4.5:1, which keeps its hue; a colour that
 * already contrasts enough is used as it is. Text on a button is white or the dark card colour, whichever
 * contrasts more with the button.
 */
import type { Config } from '../config.ts';

/** The card backgrounds of views/assets/style.css (--card in each scheme): what brand-coloured text sits on. */
export const CARD = { light: '#ffffff', dark: '#1a1f27' } as const;
/** WCAG AA for body text. */
export const MIN_CONTRAST = 4.5;

type Rgb = [number, number, number];

const parse = (hex: string): Rgb => {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
};
const toHex = (rgb: Rgb): string => `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;

/** WCAG 2 relative luminance of an sRGB colour. */
function luminance(hex: string): number {
  const [r, g, b] = parse(hex).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as Rgb;
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG 2 contrast ratio of two colours (1 to 21). */
export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** `colour` itself when it reaches `min` on `background`, else the least mix towards white or black that does. */
export function readableOn(colour: string, background: string, min = MIN_CONTRAST): string {
  const towards = luminance(background) < 0.18 ? 255 : 0;
  const rgb = parse(colour);
  for (let step = 0; step <= 100; step++) {
    const mixed = toHex(rgb.map((c) => c + ((towards - c) * step) / 100) as Rgb);
    if (contrast(mixed, background) >= min) return mixed;
  }
  return towards ? '#ffffff' : '#000000';
}

/** The text colour for a button of `colour`: white or the dark card, whichever contrasts more. */
const textOn = (colour: string): string => (contrast('#ffffff', colour) >= contrast(CARD.dark, colour) ? '#ffffff' : CARD.dark);

export function themeCss(config: Config): string {
  const light = readableOn(config.branding.primaryColor, CARD.light);
  const dark = readableOn(config.branding.primaryColor, CARD.dark);
  return [
    `/* The brand colour ${config.branding.primaryColor}, adjusted only where needed for 4.5:1 on each scheme's cards (src/http/theme.ts). */`,
    `:root { --primary: ${light}; --on-primary: ${textOn(light)}; }`,
    `@media (prefers-color-scheme: dark) { :root { --primary: ${dark}; --on-primary: ${textOn(dark)}; } }`,
    '',
  ].join('\n');
}
