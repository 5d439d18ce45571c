/**
 * A software passkey for tests, written from the WebAuthn spec with node:crypto only (independent of
 * @simplewebauthn, which the server uses): an EC P-256 key pair, a small CBOR encoder, the COSE EC2 key,
 * the "none" attestation object, authenticator data and client data, and ECDSA-SHA256 assertions.
 * Every field a server checks can be overridden, so a test can craft the response that breaks one rule.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/** Authenticator data flags (WebAuthn §6.1). */
export const FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40, ED: 0x80 } as const;
/** COSE algorithm ids. */
export const COSE_ALG = { EdDSA: -8, ES256: -7, RS256: -257 } as const;

// ---------------------------------------------------------------------------------------------------------
// CBOR (RFC 8949): just what attestation objects and COSE keys use.

export type CborValue = number | string | Uint8Array | CborValue[] | Map<number | string, CborValue> | { [key: string]: CborValue };

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(n, 1);
    return b;
  }
  if (n < 0x100000000) {
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  }
  throw new Error('CBOR: integer too large for this encoder');
}

/** Definite-length CBOR: unsigned and negative integers, byte strings, text, arrays, maps (in insertion order). */
export function cbor(value: CborValue): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('CBOR: only integers');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  const entries: [number | string, CborValue][] = value instanceof Map ? [...value] : Object.entries(value);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, v]) => [cbor(k), cbor(v)])]);
}

// ---------------------------------------------------------------------------------------------------------

const b64url = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export const newKeyPair = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** The COSE_Key of an EC P-256 public key: kty 2 (EC2), alg (default -7, ES256), crv 1 (P-256), x, y. */
export function coseKey(publicKey: KeyObject, alg: number = COSE_ALG.ES256): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  return cbor(new Map<number, CborValue>([
    [1, 2], [3, alg], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')],
  ]));
}

/** rpIdHash ‖ flags ‖ signCount (uint32 big-endian) ‖ attested credential data (when given). */
export function authenticatorData(rpId: string, flags: number, counter: number, attested?: { aaguid: Uint8Array; credentialId: Uint8Array; publicKey: Uint8Array }): Buffer {
  const count = Buffer.alloc(4);
  count.writeUInt32BE(counter);
  const parts: Buffer[] = [sha256(rpId), Buffer.from([flags]), count];
  if (attested) {
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(attested.credentialId.length);
    parts.push(Buffer.from(attested.aaguid), idLength, Buffer.from(attested.credentialId), Buffer.from(attested.publicKey));
  }
  return Buffer.concat(parts);
}

export function clientData(fields: { type: string; challenge: string; origin: string; crossOrigin?: boolean; [extra: string]: unknown }): Buffer {
  return Buffer.from(JSON.stringify({ crossOrigin: false, ...fields }), 'utf8');
}

/** What navigator.credentials.create() gives the page, as JSON (the shape @simplewebauthn/browser posts). */
export interface RegistrationJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string;
  response: { clientDataJSON: string; attestationObject: string; transports?: string[] };
  clientExtensionResults: Record<string, unknown>;
}

/** What navigator.credentials.get() gives the page, as JSON. */
export interface AssertionJSON {
  id: string;
  rawId: string;
  type: string;
  authenticatorAttachment?: string;
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
  clientExtensionResults: Record<string, unknown>;
}

/** The parts of PublicKeyCredentialCreationOptionsJSON a passkey reads. */
export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name?: string };
  user: { id: string; name?: string };
  pubKeyCredParams?: { alg: number; type: string }[];
  [more: string]: unknown;
}

/** The parts of PublicKeyCredentialRequestOptionsJSON a passkey reads. */
export interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
  [more: string]: unknown;
}

/** Overrides shared by both ceremonies: each one breaks (or bends) one thing the server checks. */
export interface CeremonyOverrides {
  /** clientDataJSON.origin (default: the passkey's origin). */
  origin?: string;
  /** The id whose SHA-256 goes into authData's rpIdHash (default: the options' rp id, else the passkey's). */
  rpId?: string;
  /** clientDataJSON.type (default: webauthn.create / webauthn.get). */
  type?: string;
  /** clientDataJSON.challenge (default: the options' challenge). */
  challenge?: string;
  crossOrigin?: boolean;
  /** The flags byte as a whole (default: UP|UV, +AT on registration, +BE/BS as the passkey is). */
  flags?: number;
  /** The signature counter in authData (default: the passkey's next count). */
  counter?: number;
  /** The credential id in the response (and, on registration, in the attested credential data). */
  credentialId?: Uint8Array;
  /** authenticatorAttachment reported by the browser; null leaves it out (default: platform). */
  attachment?: string | null;
}

export interface RegistrationOverrides extends CeremonyOverrides {
  /** The COSE alg written into the public key (default: ES256, -7, which is what the key is). */
  alg?: number;
  aaguid?: Uint8Array;
  transports?: string[];
  fmt?: string;
  attStmt?: Map<number | string, CborValue>;
}

export interface AssertionOverrides extends CeremonyOverrides {
  /** response.userHandle (base64url); null leaves it out (default: the handle the passkey was made for). */
  userHandle?: string | null;
  /** Sign with this key instead of the passkey's own. */
  signingKey?: KeyObject;
  /** Use these bytes as the signature, whatever was signed. */
  signature?: Uint8Array;
}

export interface SoftPasskeyInit {
  /** The page the ceremonies run on, e.g. the issuer's origin. */
  origin: string;
  /** Default: the origin's host name. */
  rpId?: string;
  credentialId?: Uint8Array;
  keys?: KeyPair;
  /** A synced passkey (BE), and whether it is backed up now (BS). */
  backupEligible?: boolean;
  backedUp?: boolean;
  aaguid?: Uint8Array;
  /** The signature counter the next assertion starts from (+1 each time); 0 at registration. */
  counter?: number;
}

/** One discoverable credential of a platform authenticator with user verification. */
export class SoftPasskey {
  readonly origin: string;
  readonly rpId: string;
  readonly credentialId: Buffer;
  readonly keys: KeyPair;
  readonly backupEligible: boolean;
  readonly backedUp: boolean;
  readonly aaguid: Buffer;
  /** The last signature counter this passkey reported. */
  counter: number;
  /** The user handle (base64url) the credential was created for; set by register() or a fixture. */
  userHandle: string | undefined;

  constructor(init: SoftPasskeyInit) {
    this.origin = init.origin;
    this.rpId = init.rpId ?? new URL(init.origin).hostname;
    this.credentialId = Buffer.from(init.credentialId ?? randomBytes(32));
    this.keys = init.keys ?? newKeyPair();
    this.backupEligible = init.backupEligible ?? false;
    this.backedUp = init.backedUp ?? false;
    this.aaguid = Buffer.from(init.aaguid ?? Buffer.alloc(16));
    this.counter = init.counter ?? 0;
  }

  get id(): string {
    return b64url(this.credentialId);
  }

  /** The public key as the server stores it: the COSE key, base64url. */
  get publicKeyCose(): string {
    return b64url(coseKey(this.keys.publicKey));
  }

  private baseFlags(): number {
    return FLAGS.UP | FLAGS.UV | (this.backupEligible ? FLAGS.BE : 0) | (this.backedUp ? FLAGS.BS : 0);
  }

  private clientData(type: string, challenge: string, o: CeremonyOverrides): Buffer {
    return clientData({
      type: o.type ?? type, challenge: o.challenge ?? challenge, origin: o.origin ?? this.origin,
      ...(o.crossOrigin !== undefined ? { crossOrigin: o.crossOrigin } : {}),
    });
  }

  /** navigator.credentials.create() for these options: a "none" attestation of a new credential. */
  register(options: CreationOptions, o: RegistrationOverrides = {}): RegistrationJSON {
    const credentialId = o.credentialId ? Buffer.from(o.credentialId) : this.credentialId;
    const authData = authenticatorData(o.rpId ?? options.rp.id ?? this.rpId, o.flags ?? this.baseFlags() | FLAGS.AT, o.counter ?? 0, {
      aaguid: o.aaguid ?? this.aaguid, credentialId, publicKey: coseKey(this.keys.publicKey, o.alg ?? COSE_ALG.ES256),
    });
    const attestationObject = cbor(new Map<string, CborValue>([
      ['fmt', o.fmt ?? 'none'], ['attStmt', o.attStmt ?? new Map()], ['authData', authData],
    ]));
    this.userHandle = options.user.id;
    const attachment = o.attachment === undefined ? 'platform' : o.attachment;
    return {
      id: b64url(credentialId), rawId: b64url(credentialId), type: 'public-key',
      ...(attachment === null ? {} : { authenticatorAttachment: attachment }),
      response: {
        clientDataJSON: b64url(this.clientData('webauthn.create', options.challenge, o)),
        attestationObject: b64url(attestationObject),
        transports: o.transports ?? ['internal'],
      },
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get() for these options: signs authData ‖ SHA-256(clientDataJSON) with ECDSA-SHA256 (DER). */
  assert(options: RequestOptions, o: AssertionOverrides = {}): AssertionJSON {
    const credentialId = o.credentialId ? Buffer.from(o.credentialId) : this.credentialId;
    const counter = o.counter ?? this.counter + 1;
    if (o.counter === undefined) this.counter = counter;
    const authData = authenticatorData(o.rpId ?? options.rpId ?? this.rpId, o.flags ?? this.baseFlags(), counter);
    const data = this.clientData('webauthn.get', options.challenge, o);
    const signature = o.signature ?? sign('sha256', Buffer.concat([authData, sha256(data)]), o.signingKey ?? this.keys.privateKey);
    const userHandle = o.userHandle === undefined ? this.userHandle : o.userHandle ?? undefined;
    const attachment = o.attachment === undefined ? 'platform' : o.attachment;
    return {
      id: b64url(credentialId), rawId: b64url(credentialId), type: 'public-key',
      ...(attachment === null ? {} : { authenticatorAttachment: attachment }),
      response: {
        clientDataJSON: b64url(data), authenticatorData: b64url(authData), signature: b64url(signature),
        ...(userHandle === undefined ? {} : { userHandle }),
      },
      clientExtensionResults: {},
    };
  }
}

/** The user handle Latchkey gives a user's passkeys: the account id's UTF-8 bytes, base64url. */
export const userHandleOf = (userId: string) => Buffer.from(userId, 'utf8').toString('base64url');

interface PasskeyStore {
  authenticators: {
    insert(a: { userId: string; kind: string; label: string; data?: Record<string, unknown>; publicKey?: string; externalId?: string }): Promise<{ id: string }>;
  };
}

/**
 * Fixture: the passkey stored for the user as a registration would store it (straight into the store: fast).
 * `kind: 'security-key'` stores it as a security key (a roaming authenticator, over USB by default).
 */
export async function addPasskey(store: PasskeyStore, userId: string, passkey: SoftPasskey, { label = 'Passkey', counter = passkey.counter, kind = 'webauthn' as 'webauthn' | 'security-key' } = {}): Promise<{ id: string }> {
  passkey.userHandle = userHandleOf(userId);
  passkey.counter = counter;
  return store.authenticators.insert({
    userId, kind, label, publicKey: passkey.publicKeyCose, externalId: passkey.id,
    data: { counter, transports: kind === 'webauthn' ? ['internal'] : ['usb'], backupEligible: passkey.backupEligible, backedUp: passkey.backedUp },
  });
}
