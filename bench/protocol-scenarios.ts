/**
 * The protocol endpoints under autocannon: discovery, JWKS, client-credentials tokens, refresh grants and
 * introspection. Each is checked once by hand before it is loaded, so a scenario that only produces
 * errors fails loudly instead of reporting a fast error rate.
 */
import type { HttpScenario } from './cannon.ts';
import type { Fixtures } from './seed.ts';
import { basicAuth, type Tokens } from './sign-in.ts';

const FORM = 'application/x-www-form-urlencoded';

export interface ProtocolInputs {
  fixtures: Fixtures;
  /**
   * Refresh tokens from real sign-ins. The web client is confidential (client_secret_basic) and not
   * sender-constrained, so oidc-provider's default rotateRefreshToken keeps each token until 70% of its
   * 14-day lifetime has passed: one token serves any number of refresh grants.
   */
  signedIn: Tokens[];
}

export function protocolScenarios({ fixtures, signedIn }: ProtocolInputs): Record<'discovery' | 'jwks' | 'client-credentials' | 'refresh' | 'introspection', HttpScenario> {
  const web = basicAuth(fixtures.web.clientId, fixtures.web.clientSecret!);
  const service = basicAuth(fixtures.service.clientId, fixtures.service.clientSecret!);
  const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
  return {
    discovery: { path: '/.well-known/openid-configuration', verify: (b) => b.includes('"token_endpoint"') },
    jwks: { path: '/jwks', verify: (b) => b.startsWith('{"keys":[') },
    'client-credentials': {
      path: '/token',
      method: 'POST',
      headers: { authorization: service, 'content-type': FORM },
      bodies: [form({ grant_type: 'client_credentials' })],
      verify: (b) => b.includes('"access_token"'),
    },
    refresh: {
      path: '/token',
      method: 'POST',
      headers: { authorization: web, 'content-type': FORM },
      bodies: signedIn.map((t) => form({ grant_type: 'refresh_token', refresh_token: t.refresh_token! })),
      verify: (b) => b.includes('"id_token"'),
    },
    // The resource server's view: the web client introspects access tokens issued to it, with the hint.
    introspection: {
      path: '/token/introspection',
      method: 'POST',
      headers: { authorization: web, 'content-type': FORM },
      bodies: signedIn.map((t) => form({ token: t.access_token, token_type_hint: 'access_token' })),
      verify: (b) => b.startsWith('{"active":true'),
    },
  };
}

/** One request of `scenario`, answered 2xx and verified, or an error explaining what came back. */
export async function check(url: string, name: string, scenario: HttpScenario): Promise<void> {
  const res = await fetch(`${url}${scenario.path}`, {
    method: scenario.method ?? 'GET',
    headers: scenario.headers ?? {},
    ...(scenario.bodies?.[0] ? { body: scenario.bodies[0] } : {}),
  });
  const body = await res.text();
  if (!res.ok || (scenario.verify && !scenario.verify(body))) {
    throw new Error(`${name}: the first request already fails (HTTP ${res.status}): ${body.slice(0, 300)}`);
  }
}
