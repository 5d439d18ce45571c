/**
 * Short one-time codes (SMS): random digits, kept only as a keyed hash (HMAC-SHA256 under a key derived
 * from secrets.encryptionKey), so a copy of the database alone cannot be searched for the code; compared
 * in constant time.
 */
import { createHmac, hkdfSync, randomInt, timingSafeEqual } from 'node:crypto';

export function randomDigits(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += String(randomInt(10));
  return out;
}

export function codeHasher(encryptionKey: string) {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(encryptionKey, 'utf8'), Buffer.alloc(0), 'latchkey one-time code v1', 32));
  const hash = (code: string, context: string) => createHmac('sha256', key).update(`${context}\u0000${code}`).digest('base64url');
  return {
    hash,
    /** Does `code` match `expected` (a hash made with the same context)? */
    matches(code: string, context: string, expected: unknown): boolean {
      if (typeof expected !== 'string') return false;
      const a = Buffer.from(hash(code, context));
      const b = Buffer.from(expected);
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}
