/**
 * The mixed scenario: token traffic (client credentials, refresh and introspection in turn, at a fixed
 * rate) measured alone and then while password sign-ins run flat out, so the token p99 during sign-ins
 * sits next to the p99 without them. argon2 and WebCrypto's RS256 signing share libuv's thread pool, and
 * sign-in pages share the event loop with /token: this shows whether sign-ins starve the token paths.
 *
 * The soak (`--soak SECONDS`) runs the same mix for a long time and samples the server's RSS and the
 * token p99 every 30 s, then says whether both stayed flat.
 */
import { cannonMix, type HttpScenario } from './cannon.ts';
import { loop, type Measurement } from './measurement.ts';

/** Connections carrying the token traffic (the rate, not these, sets the load). */
export const TOKEN_CONNECTIONS = 20;
export const SOAK_WINDOW_SECONDS = 30;

export interface MixedInputs {
  url: string;
  /** Client credentials, refresh and introspection. */
  tokens: readonly HttpScenario[];
  /** Token requests per second, over all three. */
  tokenRate: number;
  /** One complete sign-in by virtual user `w`. */
  signIn: (w: number) => Promise<void>;
  signInUsers: number;
}

export const tokenTraffic = (m: MixedInputs, seconds: number): Promise<Measurement> =>
  cannonMix(m.url, m.tokens, { connections: TOKEN_CONNECTIONS, seconds, rate: m.tokenRate });

/** Token traffic and sign-ins at once, for `seconds`: both measurements. */
export async function tokensDuringSignIns(m: MixedInputs, seconds: number): Promise<{ tokens: Measurement; signIns: Measurement }> {
  const [tokens, signIns] = await Promise.all([tokenTraffic(m, seconds), loop(m.signInUsers, seconds, m.signIn)]);
  return { tokens, signIns };
}

export interface SoakWindow {
  /** Seconds since the soak began, at the end of this window. */
  atS: number;
  rssMb: number;
  tokens: Measurement;
  signInsPerSecond: number;
  signInErrors: number;
}

export interface SoakResult {
  windows: SoakWindow[];
  rssFlat: boolean;
  p99Flat: boolean;
  rule: string;
}

/** Within these, the last third of the windows counts as level with the first third. */
const RSS_GROWTH = 0.1;
const P99_GROWTH = 0.2;

/**
 * Sign-ins run for the whole soak; the token traffic runs in consecutive 30 s windows, each its own
 * histogram, and the server's RSS is read at the end of each.
 */
export async function soak(m: MixedInputs, seconds: number, rssMb: () => number, progress: (s: string) => void): Promise<SoakResult> {
  let signIns = 0;
  let signInErrors = 0;
  let stop = false;
  const started = performance.now();
  const signInLoop = Promise.all(
    Array.from({ length: m.signInUsers }, async (_, w) => {
      while (!stop) {
        try {
          await m.signIn(w);
          signIns++;
        } catch {
          signInErrors++;
        }
      }
    }),
  );
  const windows: SoakWindow[] = [];
  try {
    for (let done = 0; done < seconds; ) {
      const length = Math.min(SOAK_WINDOW_SECONDS, seconds - done);
      const before = { signIns, signInErrors, at: performance.now() };
      const tokens = await tokenTraffic(m, length);
      done += length;
      const window: SoakWindow = {
        atS: Math.round((performance.now() - started) / 1000),
        rssMb: rssMb(),
        tokens,
        signInsPerSecond: (signIns - before.signIns) / ((performance.now() - before.at) / 1000),
        signInErrors: signInErrors - before.signInErrors,
      };
      windows.push(window);
      progress(`soak ${window.atS} s: RSS ${window.rssMb.toFixed(0)} MB, token p99 ${window.tokens.p99Ms} ms, ${window.signInsPerSecond.toFixed(1)} sign-ins/s`);
    }
  } finally {
    stop = true;
    await signInLoop;
  }
  return { windows, ...flatness(windows) };
}

/** The rule: the mean of the last third of the windows against the mean of the first third. */
export function flatness(windows: readonly SoakWindow[]): { rssFlat: boolean; p99Flat: boolean; rule: string } {
  const third = Math.max(1, Math.floor(windows.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const first = windows.slice(0, third);
  const last = windows.slice(-third);
  const rssFlat = mean(last.map((w) => w.rssMb)) <= mean(first.map((w) => w.rssMb)) * (1 + RSS_GROWTH);
  const p99Flat = mean(last.map((w) => w.tokens.p99Ms)) <= mean(first.map((w) => w.tokens.p99Ms)) * (1 + P99_GROWTH);
  const rule = `flat = the mean of the last third of the windows (${third}) is at most ${RSS_GROWTH * 100}% (RSS) / ${P99_GROWTH * 100}% (token p99) above the mean of the first third`;
  return { rssFlat, p99Flat, rule };
}
