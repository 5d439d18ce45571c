/**
 * `npm run bench`: for each database (embedded always, PostgreSQL when a URL is given) seed a fresh
 * database, start the server as a child process on 127.0.0.1, run every scenario for a bounded time and
 * print one table. See bench/options.ts for the flags.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig, type Config } from '../src/config.ts';
import { workerCount } from '../src/workers.ts';
import { argon2Ceiling, usesParameters } from './argon2-ceiling.ts';
import { buildServer } from './build.ts';
import { cannon } from './cannon.ts';
import { embeddedDatabase, postgresDatabase, type BenchDatabase } from './databases.ts';
import { loop, type Measurement } from './measurement.ts';
import { soak as soak_, TOKEN_CONNECTIONS, tokenTraffic, tokensDuringSignIns, type MixedInputs } from './mixed.ts';
import { header } from './header.ts';
import { readOptions, SCENARIOS, type BenchOptions, type ScenarioName } from './options.ts';
import { check, protocolScenarios } from './protocol-scenarios.ts';
import { cpuBetween, machineBusy, sampleCpu, type CpuSample } from './proc.ts';
import { formatReport, type Row, type ServerRun } from './report.ts';
import { freePort, serverEnvironment, startServerProcess, type ServerProcess } from './server.ts';
import { seed, type Fixtures } from './seed.ts';
import { signIn, type Tokens } from './sign-in.ts';

/** Sign-ins made before the protocol scenarios, for their refresh and access tokens. */
const TOKEN_SIGN_INS = 8;

const cleanups = new Set<() => Promise<void>>();
process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted: stopping the server and dropping the database\n');
  void Promise.allSettled([...cleanups].map((c) => c())).then(() => process.exit(130));
});

async function benchDatabase(db: BenchDatabase, options: BenchOptions): Promise<string> {
  const env = serverEnvironment(db.env, await freePort(), options.configFile);
  const config = loadConfig({ env });
  const progress = (s: string) => process.stderr.write(`[${db.label}] ${s}\n`);
  const busyBefore = await machineBusy();
  if (busyBefore > 0.1) progress(`WARNING: the machine is already ${(busyBefore * 100).toFixed(0)}% busy before the run; figures will be low`);

  progress(`seeding ${options.connections} users and 2 clients`);
  const fixtures = await seed(config, options.connections);
  if (!usesParameters(fixtures.sampleHash, config.argon2)) throw new Error('stored hashes do not use the configured argon2 parameters');

  const rows: Row[] = [];
  const runs: ServerRun[] = [];
  const serverNotes: string[] = [];
  for (const workers of workerRuns(env, options.workers, progress)) {
    // The argon2 ceiling does not depend on the server: measured with the first run only.
    const only = runs.length ? new Set([...options.only].filter((s) => s !== 'argon2')) : options.only;
    const run = await benchServer({ db, env: { ...env, LATCHKEY_WORKERS: workers.setting }, workers: workers.label, fixtures, options: { ...options, only }, argon2: config.argon2, progress });
    rows.push(...run.rows);
    runs.push(run);
    serverNotes.push(run.note);
  }
  // Each scenario's runs side by side, in the order the workers were given.
  rows.sort((a, b) => SCENARIOS.indexOf(a.name) - SCENARIOS.indexOf(b.name));
  const quiet = `machine busy before the run: ${(busyBefore * 100).toFixed(0)}% of all CPUs${busyBefore > 0.1 ? ' (NOT quiet: other work was running)' : ''}`;
  return formatReport({ title: `${db.label} database`, notes: [...serverNotes, ...notes(options, config.argon2), quiet], rows, runs });
}

/**
 * The --workers values this database runs, each once: what the server would make of LATCHKEY_WORKERS
 * (`auto` is a number of cores on PostgreSQL and one process on the embedded database, which refuses more).
 */
function workerRuns(env: Record<string, string>, settings: readonly string[], progress: (s: string) => void): { setting: string; label: string }[] {
  const runs = new Map<number, { setting: string; label: string }>();
  for (const setting of settings) {
    let count: number;
    try {
      count = workerCount(loadConfig({ env: { ...env, LATCHKEY_WORKERS: setting } }));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      progress(`--workers ${setting} skipped: ${err.message.split('\n').at(-1)!.trim()}`);
      continue;
    }
    if (!runs.has(count)) runs.set(count, { setting, label: setting === 'auto' ? `auto (${count})` : setting });
  }
  return [...runs.values()];
}

/** One server process (with its workers) for every scenario: its rows, idle and peak RSS, and a note. */
async function benchServer(ctx: {
  db: BenchDatabase; env: Record<string, string>; workers: string; fixtures: Fixtures; options: BenchOptions; argon2: Config['argon2']; progress: (s: string) => void;
}): Promise<ServerRun & { rows: Row[]; note: string }> {
  const { db, env, fixtures, options, progress } = ctx;
  const server = await startServerProcess({ env, workDir: db.workDir, cpuProfDir: options.cpuProfDir });
  const stop = () => server.stop();
  cleanups.add(stop);
  try {
    await sleep(1500);
    const idleRssMb = server.memory().rssMb;
    const pids = server.pids();
    progress(`server pid ${server.pid} (workers ${ctx.workers}: ${pids.length} processes) ready at ${server.url}, idle RSS ${idleRssMb.toFixed(0)} MB`);

    const signedIn: Tokens[] = await Promise.all(
      Array.from({ length: TOKEN_SIGN_INS }, (_, i) => signIn(server.url, fixtures.web, fixtures.users[i % fixtures.users.length]!, true)),
    );
    const runnerFor = scenarioRunners({ server, fixtures, signedIn, options, argon2: ctx.argon2, env });
    const warmup = Math.min(2, Math.max(0.5, options.duration / 4));
    let peakRssMb = server.memory().peakMb; // start-up included

    const rows: Row[] = [];
    /** Runs `work` as one measured window: CPU, statements per operation (of `operations`) and peak RSS. */
    const measured = async <T>(work: () => Promise<T>, operations: (t: T) => number) => {
      server.resetPeak();
      const transactions = await db.transactions();
      const before = sampleServer(server, await db.backendPids());
      const out = await work();
      const cpu = cpuBetween(before, sampleServer(server, await db.backendPids()));
      const statements = transactions === undefined ? undefined : ((await db.transactions())! - transactions) / operations(out);
      const peakMb = server.memory().peakMb;
      peakRssMb = Math.max(peakRssMb, peakMb);
      return { out, cpu, statements, peakMb };
    };
    let soak: ServerRun['soak'];
    for (const name of SCENARIOS.filter((s) => options.only.has(s))) {
      if (name === 'mixed') {
        const mix = await mixedInputs({ server, fixtures, signedIn, options });
        if (options.soakSeconds) {
          progress(`soak (workers ${ctx.workers}): ${options.soakSeconds} s of token traffic at ${options.tokenRate}/s while sign-ins run`);
          await tokensDuringSignIns(mix, warmup);
          soak = await soak_(mix, options.soakSeconds, () => server.memory().rssMb, progress);
          continue;
        }
        progress(`mixed (workers ${ctx.workers}): token traffic at ${options.tokenRate}/s alone, then with sign-ins: ${options.duration} s each`);
        await tokenTraffic(mix, warmup);
        const alone = await measured(() => tokenTraffic(mix, options.duration), (m) => m.operations);
        rows.push({ name, label: 'mixed: token requests alone', workers: ctx.workers, result: alone.out, cpu: alone.cpu, statements: alone.statements, peakMb: alone.peakMb, p99TargetMs: TOKEN_P99_TARGET_MS });
        const both = await measured(() => tokensDuringSignIns(mix, options.duration), (m) => m.tokens.operations + m.signIns.operations);
        rows.push({ name, label: 'mixed: token requests during sign-ins', workers: ctx.workers, result: both.out.tokens, cpu: both.cpu, statements: undefined, peakMb: both.peakMb, perOp: false, p99TargetMs: TOKEN_P99_TARGET_MS });
        rows.push({ name, label: 'mixed: sign-ins during token traffic', workers: ctx.workers, result: both.out.signIns, cpu: both.cpu, statements: undefined, peakMb: both.peakMb, perOp: false });
        continue;
      }
      progress(`${name} (workers ${ctx.workers}): ${options.duration} s`);
      const run = await runnerFor(name);
      if (name !== 'argon2') await run(warmup);
      const { out: result, cpu, statements, peakMb } = await measured(() => run(options.duration), (m) => m.operations);
      rows.push({ name, workers: ctx.workers, result, cpu, statements, peakMb: name === 'argon2' ? undefined : peakMb });
    }
    const what = pids.length > 1 ? `a primary (pid ${server.pid}) and ${pids.length - 1} worker processes` : `child pid ${server.pid}`;
    const note = `server, workers ${ctx.workers}: ${process.execPath.split('/').at(-1)} ${process.version} dist/src/main.js as ${what}, LATCHKEY_ENV=test, ${db.label === 'postgres' ? 'PostgreSQL (throw-away database)' : 'embedded PGlite (temp data dir)'}`;
    return { workers: ctx.workers, idleRssMb, peakRssMb, rows, note, ...(soak ? { soak } : {}) };
  } catch (err) {
    process.stderr.write(`server log (last lines):\n${server.logTail()}\n`);
    throw err;
  } finally {
    await stop();
    cleanups.delete(stop);
  }
}

/** CPU now, with the server's time summed over its processes (the primary and each worker). */
function sampleServer(server: ServerProcess, databasePids: readonly number[]): CpuSample {
  const sample = sampleCpu(server.pid, databasePids);
  return { ...sample, serverMs: server.pids().reduce((ms, pid) => ms + sampleCpu(pid).serverMs, 0) };
}

/** The issue's target for the token endpoints' p99 latency. */
const TOKEN_P99_TARGET_MS = 50;

/** The mixed scenario's token traffic (each kind checked once first) and sign-ins, on the same users as the sign-in scenario. */
async function mixedInputs(ctx: { server: ServerProcess; fixtures: Fixtures; signedIn: Tokens[]; options: BenchOptions }): Promise<MixedInputs> {
  const { server, fixtures, options } = ctx;
  const protocol = protocolScenarios({ fixtures, signedIn: ctx.signedIn });
  const kinds = ['client-credentials', 'refresh', 'introspection'] as const;
  for (const kind of kinds) await check(server.url, kind, protocol[kind]);
  return {
    url: server.url,
    tokens: kinds.map((k) => protocol[k]),
    tokenRate: options.tokenRate,
    signIn: (w) => signIn(server.url, fixtures.web, fixtures.users[w % fixtures.users.length]!).then(() => {}),
    signInUsers: options.connections,
  };
}

/** How each scenario runs for a given number of seconds; the HTTP ones are checked once first. */
function scenarioRunners(ctx: {
  server: ServerProcess; fixtures: Fixtures; signedIn: Tokens[]; options: BenchOptions; argon2: Config['argon2']; env: Record<string, string>;
}) {
  const { server, fixtures, options } = ctx;
  const protocol = protocolScenarios({ fixtures, signedIn: ctx.signedIn });
  return async (name: ScenarioName): Promise<(seconds: number) => Promise<Measurement>> => {
    if (name === 'mixed') throw new Error('the mixed scenario runs through mixedInputs()');
    if (name === 'argon2') return (seconds) => argon2Ceiling(ctx.argon2, seconds, ctx.env);
    if (name === 'sign-in') {
      const { users } = fixtures;
      return (seconds) => loop(options.connections, seconds, (w) => signIn(server.url, fixtures.web, users[w % users.length]!).then(() => {}));
    }
    await check(server.url, name, protocol[name]);
    return (seconds) => cannon(server.url, protocol[name], { connections: options.connections, seconds });
  };
}

function notes(options: BenchOptions, argon2: Config['argon2']): string[] {
  return [
    `machine: ${os.cpus().length} CPUs shared by server and load generator; UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '(default 4)'}`,
    `load: ${options.connections} connections / virtual users, ${options.duration} s measured after a warm-up; autocannon with pipelining 1`,
    ...(options.only.has('mixed')
      ? [`mixed${options.soakSeconds ? ' (soak)' : ''}: client credentials, refresh and introspection in turn at ${options.tokenRate}/s in all (${TOKEN_CONNECTIONS} connections, latency corrected for coordinated omission), alone and then while ${options.connections} virtual users sign in`]
      : []),
    ...(options.configFile ? [`configuration: config/default.yaml + ${options.configFile}`] : []),
    `argon2id m=${argon2.memoryCost} t=${argon2.timeCost} p=${argon2.parallelism}, concurrency ${argon2.concurrency} per server process (the ceiling: one process)`,
    `sign-in: a new browser each time (no session, so consent every time): 7 page requests + code exchange at /token`,
    `refresh / introspection: ${TOKEN_SIGN_INS} tokens from real sign-ins, used in turn (confidential client: refresh tokens do not rotate)`,
  ];
}

async function main(): Promise<void> {
  const options = readOptions();
  process.stdout.write(header());
  if (options.build) {
    process.stderr.write('building dist/ (npm run build)\n');
    const problems = await buildServer();
    if (problems) process.stderr.write(`WARNING: the tree has type errors; dist/ was emitted anyway:\n${problems}\n`);
  }
  const targets: (() => Promise<BenchDatabase>)[] = [];
  if (options.embedded) targets.push(embeddedDatabase);
  if (options.databaseUrl) targets.push(() => postgresDatabase(options.databaseUrl!));
  for (const open of targets) {
    const db = await open();
    const drop = () => db.drop();
    cleanups.add(drop);
    try {
      process.stdout.write(`\n${await benchDatabase(db, options)}`);
    } finally {
      await drop();
      cleanups.delete(drop);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
