/**
 * Signing in without a password (the sign-in page's passkey button, its security key button and passkey
 * autofill): a discoverable credential (no email typed, an empty allowCredentials) of a passkey or of a
 * security key that holds one. The challenge is a `webauthn` step for anyone; the account is the
 * credential's owner, and the credential's own kind decides the proof it gives. User verification is
 * required whatever the method: a credential alone without it would be one factor.
 */
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Authenticator } from '../store/authenticators.ts';
import type { User } from '../store/users.ts';
import { securityKey } from './security-key.ts';
import type { FactorContext, Proof, Step } from './types.ts';
import { webauthn } from './webauthn.ts';
import { challengeStep, checkAssertion, readAssertion, requestOptions, userHandle, type WebauthnFactor, type WebauthnInput } from './webauthn-factor.ts';

/** The methods whose credentials may sign in on their own. */
const METHODS: readonly WebauthnFactor[] = [webauthn, securityKey];

/** Who is signing in with a discoverable credential, before anything is checked. */
export interface CredentialOwner {
  user: User;
  authenticator: Authenticator;
  response: AuthenticationResponseJSON;
  method: WebauthnFactor;
}

export const passkeySignIn = {
  /** A challenge for whoever signs in here. */
  async begin(ctx: FactorContext): Promise<Step<'webauthn'>> {
    return challengeStep(ctx, webauthn.kind, await requestOptions(ctx, 'required', undefined));
  },
  /** The (active) account a signed response claims to come from, or undefined; nothing is checked yet. */
  async owner(given: WebauthnInput, ctx: FactorContext): Promise<CredentialOwner | undefined> {
    const response = readAssertion(given.credential, 'factors.webauthn.noResponse');
    const a = await ctx.store.authenticators.findByExternalId(response.id);
    const method = a && METHODS.find((m) => m.kind === a.kind);
    const user = a && method ? await ctx.store.users.findById(a.userId) : undefined;
    if (!a || !method || !user || user.status !== 'active') return undefined;
    const handle = response.response.userHandle;
    // With no credentials listed, the authenticator must say whose credential it is (WebAuthn L3 §7.2 step 6).
    if (!handle || handle !== userHandle(user.id).toString('base64url')) return undefined;
    return { user, authenticator: a, response, method };
  },
  /** Checks the response against the challenge that was taken out (user verification required): the proof, or FactorError. */
  async prove(p: { data: Record<string, unknown> }, owner: CredentialOwner, ctx: FactorContext): Promise<Proof> {
    return checkAssertion(ctx, owner.method.webauthn, owner.authenticator, p.data.challenge, owner.response, true);
  },
};
