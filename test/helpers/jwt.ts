/**
 * Reading and verifying compact JWS tokens against a JWKS with node:crypto only, so that a test checks
 * signatures independently of the relying-party library.
 */
import { createPublicKey, verify } from 'node:crypto';

export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  crv?: string;
  [member: string]: unknown;
}

export interface DecodedJwt {
  header: { alg: string; kid?: string; typ?: string; [k: string]: unknown };
  payload: Record<string, unknown>;
}

function part(token: string, index: number): Record<string, unknown> {
  const segment = token.split('.')[index];
  if (segment === undefined) throw new Error('not a compact JWS');
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Header and payload, without checking the signature. */
export function decodeJwt(token: string): DecodedJwt {
  if (token.split('.').length !== 3) throw new Error('not a compact JWS');
  return { header: part(token, 0) as DecodedJwt['header'], payload: part(token, 1) };
}

export async function fetchJwks(issuer: string): Promise<Jwk[]> {
  const res = await fetch(`${issuer}/jwks`);
  if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
  return ((await res.json()) as { keys: Jwk[] }).keys;
}

/** Verifies the signature with the key named by `kid` (RS256, ES256, EdDSA); throws when it does not hold. */
export function verifyJwt(token: string, keys: readonly Jwk[]): DecodedJwt {
  const decoded = decodeJwt(token);
  const { alg, kid } = decoded.header;
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error(`no key with kid ${kid}`);
  if (jwk.alg && jwk.alg !== alg) throw new Error(`key ${kid} is for ${jwk.alg}, token says ${alg}`);
  const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
  const [h, p, s] = token.split('.') as [string, string, string];
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  let ok: boolean;
  switch (alg) {
    case 'RS256':
      ok = verify('sha256', data, key, signature);
      break;
    case 'ES256':
      ok = verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
      break;
    case 'EdDSA':
      ok = verify(null, data, key, signature);
      break;
    default:
      throw new Error(`unexpected alg ${alg}`);
  }
  if (!ok) throw new Error('bad signature');
  return decoded;
}
