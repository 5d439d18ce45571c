/**
 * Passkeys: "Sign in with face or fingerprint", WebAuthn platform authenticators through
 * @simplewebauthn/server. A passkey can be the first step on its own (a discoverable credential, no email
 * typed) or the second step after a password; either way user verification is required and the proof is
 * phishing-resistant: acr `phr`, amr `hwk` (or `swk` for a synced passkey, by the backup-eligible flag) and
 * `user`. Only the public key is stored; the biometric never leaves the device.
 *
 * The ceremonies and their server-side checks are shared with security keys (webauthn-factor.ts); what
 * is a passkey's own is here: the platform attachment (enforced on the server), user verification and a
 * resident key required, and what it knows of devices (it stays on the one it was made on unless synced).
 */
import { dataOf, webauthnFactor } from './webauthn-factor.ts';

export type { WebauthnInput } from './webauthn-factor.ts';

export const webauthn = webauthnFactor({
  kind: 'webauthn', attachment: 'platform', userVerification: 'required', residentKey: 'required', remembersDevice: true,
  defaultLabel: 'Passkey', assertForm: 'passkey', wrongAttachment: 'notPlatform',
}, {
  cannotWorkHere(_a, here) {
    return here.platformAuthenticator === false ? 'factors.webauthn.noneHere' : undefined;
  },

  madeHere(a, here) {
    return !!here.deviceHash && dataOf(a).deviceHash === here.deviceHash;
  },

  madeElsewhere(a, here) {
    // Not synced, made in another browser that this one is not, not usable from a phone nearby. A browser
    // without a device cookie is not known to be another one (its cookies may just have been cleared).
    const { deviceHash, backupEligible, transports } = dataOf(a);
    return !backupEligible && !!deviceHash && !!here.deviceHash && deviceHash !== here.deviceHash && !transports.includes('hybrid');
  },
});
