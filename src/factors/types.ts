/** What factors prove. The level (acr) is derived from a list of proofs, never assigned (interaction/level.ts). */
export type FactorKind = 'password' | 'security-question' | 'totp' | 'sms' | 'push' | 'webauthn' | 'recovery-code';

/** RFC 8176 authentication method reference values used by Latchkey. */
export type Amr = 'pwd' | 'kba' | 'otp' | 'sms' | 'mca' | 'hwk' | 'swk' | 'user' | 'mfa' | 'rba';

export type FactorCategory = 'knowledge' | 'possession' | 'inherence';

export interface Proof {
  kind: FactorKind;
  authenticatorId: string;
  amr: readonly Amr[];
  category: FactorCategory;
  phishingResistant: boolean;
}
