/**
 * Security keys: roaming FIDO2 authenticators (a YubiKey, a Titan key) plugged in or tapped, through the
 * same WebAuthn ceremonies as passkeys (webauthn-factor.ts), with a cross-platform attachment (enforced on
 * the server) and a card of its own. A user may have several (a key on the keyring, a spare in a drawer).
 *
 * What a key proves: possession of a phishing-resistant authenticator, amr `hwk`; `user` too when the key
 * checked its PIN or fingerprint in that very ceremony. User verification and a resident credential are
 * preferred, not required, so a key without a PIN still works after the password (two factors: the
 * password and the key). Signing in without a password needs a key that holds a resident credential and
 * verifies the user (its PIN): alone, a key without user verification would be one factor.
 *
 * A key works in any browser on any device it is plugged into: it is not tied to a device, so it has
 * none of a passkey's device traits (it is never "cannot work here" or "made elsewhere").
 */
import { webauthnFactor } from './webauthn-factor.ts';

export const securityKey = webauthnFactor({
  kind: 'security-key', attachment: 'cross-platform', userVerification: 'preferred', residentKey: 'preferred', remembersDevice: false,
  defaultLabel: 'Security key', assertForm: 'key', wrongAttachment: 'notSecurityKey',
});
