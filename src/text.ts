/** Text people type that Latchkey keeps and shows back (names, labels, questions). */

/** Text without control characters or lone surrogates. */
export const PRINTABLE = /^[^\p{Cc}\p{Cs}]*$/u;

/** As typed, made comparable and tidy: NFKC, every run of white space one space, trimmed. */
export const tidy = (raw: string): string => raw.normalize('NFKC').replace(/\s+/gu, ' ').trim();
