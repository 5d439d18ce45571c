/** Text people type that Latchkey keeps and shows back (names, labels, questions). */

/**
 * Text without control characters, lone surrogates, or the bidirectional controls (U+061C, U+200E/F,
 * U+202A–U+202E, U+2066–U+2069) that can make a name read backwards ("evil\u202Egnp.exe") on every page
 * and mail that shows it.
 */
export const PRINTABLE = /^[^\p{Cc}\p{Cs}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$/u;

/** As typed, made comparable and tidy: NFKC, every run of white space one space, trimmed. */
export const tidy = (raw: string): string => raw.normalize('NFKC').replace(/\s+/gu, ' ').trim();

/**
 * Every decimal digit of any script (Arabic-Indic ٣, Devanagari ३, full-width ３, …) as its ASCII digit, so
 * a code typed on a phone set to another script is read, not refused. Unicode keeps each script's digits in
 * runs of ten from zero, so a digit's value is its distance from the start of its run, modulo ten.
 */
export function asciiDigits(text: string): string {
  return text.replace(/\p{Nd}/gu, (d) => String(digitValue(d.codePointAt(0)!)));
}

const ND = /\p{Nd}/u;
function digitValue(cp: number): number {
  let start = cp;
  while (start > 0 && ND.test(String.fromCodePoint(start - 1))) start--;
  return (cp - start) % 10;
}
