/**
 * Redeems a first-party app's authorization code in-process, with the checks the token endpoint makes for a
 * code: it exists and is live (oidc-provider's model also checks that the session it is bound to still
 * exists), it was issued to the account client for our redirect URI, the PKCE verifier matches (S256,
 * constant time), the nonce is ours; then it is consumed with the adapter's conditional write, which throws
 * for the second of two redemptions, so a code is used once across every instance.
 *
 * No token is issued: a first-party app needs only who signed in, how and when, and the session.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import { AppError } from '../errors.ts';
import type { FirstPartyApp } from './app.ts';

export interface RedeemedSignIn {
  accountId: string;
  acr: string;
  amr: string[];
  /** Epoch seconds. */
  authTime: number;
  sessionUid: string;
}

export interface Expected {
  redirectUri: string;
  verifier: string;
  nonce: string;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const refuse = (why: string) => new AppError('first_party.code_invalid', 400, why);

export async function redeemCode(provider: Provider, app: FirstPartyApp, code: string, expected: Expected): Promise<RedeemedSignIn> {
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(code)) throw refuse('malformed code');
  const found = await provider.AuthorizationCode.find(code);
  if (!found || found.isExpired) throw refuse('unknown or expired code');
  if ((found as { consumed?: unknown }).consumed) throw refuse('code already used');
  if (found.clientId !== app.clientId) throw refuse('code issued to another client');
  if (found.redirectUri !== expected.redirectUri) throw refuse('redirect_uri mismatch');
  const challenge = createHash('sha256').update(expected.verifier).digest('base64url');
  if (found.codeChallengeMethod !== 'S256' || !found.codeChallenge || !same(found.codeChallenge, challenge)) throw refuse('PKCE mismatch');
  if (!found.nonce || !same(found.nonce, expected.nonce)) throw refuse('nonce mismatch');
  const { accountId, acr, amr, authTime, sessionUid } = found;
  if (!accountId || !acr || typeof authTime !== 'number' || !sessionUid) throw refuse('incomplete code');
  try {
    await found.consume();
  } catch (err) {
    // The adapter's conditional write lost to another redemption; anything else (the database) is a 5xx.
    if (err instanceof errors.InvalidGrant) throw refuse('code already used');
    throw err;
  }
  return { accountId, acr, amr: amr ?? [], authTime, sessionUid };
}
