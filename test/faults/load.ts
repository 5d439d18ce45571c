/**
 * Load for the fault tests, through nginx: loops of client-credentials grants, refresh-token grants and
 * complete password sign-ins (the benchmark's sign-in), each counting what was served and what failed.
 */
import { basicAuth, signIn } from '../../bench/sign-in.ts';
import type { RegisteredClient } from '../../src/oidc/clients.ts';

export interface LoadCounts {
  served: number;
  failed: number;
  /** The first few failures, for the report. */
  failures: string[];
}

export type LoadKind = 'client_credentials' | 'refresh' | 'sign-in';

export interface LoadFixtures {
  issuer: string;
  service: RegisteredClient;
  web: RegisteredClient & { redirectUri: string };
  /** One per sign-in loop and per refresh loop. */
  users: { email: string; password: string }[];
}

export interface RunningLoad {
  counts: Record<LoadKind, LoadCounts>;
  /** Stops the loops and waits for the requests in flight. */
  stop(): Promise<Record<LoadKind, LoadCounts>>;
}

const fresh = (): LoadCounts => ({ served: 0, failed: 0, failures: [] });

async function tokenRequest(issuer: string, client: RegisteredClient, form: Record<string, string>): Promise<Record<string, string>> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: basicAuth(client.clientId, client.clientSecret!), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as Record<string, string>;
}

/** Starts `perKind` loops of each kind; sign-in and refresh loops use users[0..perKind) and users[perKind..2*perKind). */
export async function startLoad(f: LoadFixtures, perKind = 2): Promise<RunningLoad> {
  const counts: Record<LoadKind, LoadCounts> = { client_credentials: fresh(), refresh: fresh(), 'sign-in': fresh() };
  let running = true;
  const record = async (kind: LoadKind, work: () => Promise<unknown>) => {
    try {
      await work();
      counts[kind].served++;
    } catch (err) {
      counts[kind].failed++;
      if (counts[kind].failures.length < 10) counts[kind].failures.push(`${new Date().toISOString()} ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`);
    }
  };
  // The refresh loops start from a sign-in each (before the clock starts: those are not counted).
  const refreshTokens = await Promise.all(f.users.slice(perKind, 2 * perKind).map(async (u) => (await signIn(f.issuer, f.web, u, true)).refresh_token!));
  const loops: Promise<void>[] = [];
  for (let i = 0; i < perKind; i++) {
    loops.push((async () => {
      while (running) await record('client_credentials', () => tokenRequest(f.issuer, f.service, { grant_type: 'client_credentials' }));
    })());
    loops.push((async () => {
      let token = refreshTokens[i]!;
      while (running) {
        await record('refresh', async () => {
          const body = await tokenRequest(f.issuer, f.web, { grant_type: 'refresh_token', refresh_token: token });
          if (!body.access_token) throw new Error('no access token');
          token = body.refresh_token ?? token;
        });
      }
    })());
    loops.push((async () => {
      const user = f.users[i]!;
      while (running) await record('sign-in', () => signIn(f.issuer, f.web, user));
    })());
  }
  return {
    counts,
    async stop() {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

export function describeCounts(counts: Record<LoadKind, LoadCounts>): string {
  return Object.entries(counts).map(([k, c]) => `${k} ${c.served} served/${c.failed} failed`).join(', ');
}
