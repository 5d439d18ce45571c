/** Standard scopes and the claims each releases, filled from the user record. */
import type { User } from '../store/users.ts';

export const SCOPE_CLAIMS = {
  // acr, amr and auth_time ride on `openid` so that every ID token carries them.
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  profile: ['name', 'given_name', 'family_name', 'locale', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
} as const;

export function accountClaims(user: User): { sub: string; [claim: string]: unknown } {
  const claims: { sub: string; [claim: string]: unknown } = {
    sub: user.id,
    email: user.email,
    email_verified: user.emailVerifiedAt !== null,
    updated_at: Math.floor(user.updatedAt.getTime() / 1000),
  };
  const optional: [string, unknown][] = [
    ['name', user.name], ['given_name', user.givenName], ['family_name', user.familyName], ['locale', user.locale],
    ['address', user.address],
  ];
  for (const [k, v] of optional) if (v !== null && v !== undefined) claims[k] = v;
  if (user.phoneNumber) {
    claims.phone_number = user.phoneNumber;
    claims.phone_number_verified = user.phoneVerifiedAt !== null;
  }
  return claims;
}
