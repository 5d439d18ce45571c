/** The benchmark's command-line flags (and LATCHKEY_BENCH_DATABASE_URL). */
import path from 'node:path';
import { parseArgs } from 'node:util';

export const SCENARIOS = ['discovery', 'jwks', 'client-credentials', 'refresh', 'introspection', 'sign-in', 'mixed', 'argon2'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** Measured seconds per scenario (a short warm-up comes first and is not counted). */
  duration: number;
  /** Concurrent connections (autocannon) and virtual users (sign-ins). */
  connections: number;
  /** A PostgreSQL server to create a throw-away database on; the embedded database always runs. */
  databaseUrl: string | undefined;
  embedded: boolean;
  only: ReadonlySet<ScenarioName>;
  /** Rebuild dist/ before starting the server (off: run the dist/ that is there). */
  build: boolean;
  /** Directory for a V8 CPU profile of the server process, or undefined. */
  cpuProfDir: string | undefined;
  /** A configuration file layered over config/default.yaml for the server (LATCHKEY_CONFIG). */
  configFile: string | undefined;
  /** LATCHKEY_WORKERS values to run the server with, one run each ("1", "auto", "4"); the embedded database runs one process. */
  workers: readonly string[];
  /** Token requests per second (client credentials, refresh and introspection in turn) in the mixed scenario and the soak. */
  tokenRate: number;
  /** Seconds of the soak (the mixed scenario, sampled every 30 s) instead of the scenarios; undefined: no soak. */
  soakSeconds: number | undefined;
}

export const USAGE = `npm run bench -- [--duration 6] [--connections 50] [--database-url postgres://…] [--no-embedded]
                 [--only discovery,jwks,client-credentials,refresh,introspection,sign-in,mixed,argon2]
                 [--workers 1,auto] [--token-rate 200] [--soak SECONDS] [--config FILE.yaml] [--skip-build] [--cpu-prof DIR]
  --soak 600: only the mixed scenario, for that long, RSS and token p99 sampled every 30 s (npm run bench:soak)`;

export function readOptions(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      duration: { type: 'string', default: '6' },
      connections: { type: 'string', default: '50' },
      'database-url': { type: 'string' },
      'no-embedded': { type: 'boolean', default: false },
      only: { type: 'string' },
      'skip-build': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      config: { type: 'string' },
      workers: { type: 'string', default: '1' },
      'token-rate': { type: 'string', default: '200' },
      soak: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const duration = positive('--duration', values.duration);
  const connections = positive('--connections', values.connections);
  const databaseUrl = values['database-url'] ?? (env.LATCHKEY_BENCH_DATABASE_URL || undefined);
  if (databaseUrl && !/^postgres(ql)?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(databaseUrl.replace(/\/\/[^@/]*@/, '//'))) {
    throw new Error('--database-url must point at a PostgreSQL server on the loopback interface');
  }
  const soakSeconds = values.soak === undefined ? undefined : Number(values.soak);
  if (soakSeconds !== undefined && !(Number.isInteger(soakSeconds) && soakSeconds >= 30 && soakSeconds <= 86_400)) {
    throw new Error(`--soak takes whole seconds from 30 to 86400, got "${values.soak}"`);
  }
  const only = new Set<ScenarioName>();
  for (const name of (soakSeconds ? 'mixed' : values.only ?? SCENARIOS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(SCENARIOS as readonly string[]).includes(name)) throw new Error(`--only: unknown scenario ${name} (known: ${SCENARIOS.join(', ')})`);
    only.add(name as ScenarioName);
  }
  const embedded = !values['no-embedded'];
  if (!embedded && !databaseUrl) throw new Error('--no-embedded needs --database-url');
  return { duration, connections, databaseUrl, embedded, only, build: !values['skip-build'], cpuProfDir: values['cpu-prof'],
    configFile: values.config && path.resolve(values.config), workers: workerSettings(values.workers),
    tokenRate: positive('--token-rate', values['token-rate'], 100_000), soakSeconds };
}

/** `--workers 1,auto`: each a whole number from 1 to 64 or auto (what LATCHKEY_WORKERS takes), no repeats. */
function workerSettings(value: string): string[] {
  const list = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = list.filter((w) => w !== 'auto' && !(/^\d+$/.test(w) && Number(w) >= 1 && Number(w) <= 64));
  if (!list.length || bad.length) throw new Error(`--workers takes whole numbers from 1 to 64 or auto, comma-separated; got "${value}"`);
  return list;
}

function positive(flag: string, value: string, max = 600): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`${flag} must be a positive number of at most ${max}, got "${value}"`);
  return n;
}
