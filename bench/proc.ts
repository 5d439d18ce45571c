/**
 * What Linux's /proc says about the server process and the machine: resident memory (VmRSS, peak VmHWM)
 * and CPU time, so a scenario can tell a saturated server from a saturated machine.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** USER_HZ: /proc reports CPU time in ticks of 1/100 s on Linux. */
const TICK_MS = 10;

export interface Memory {
  rssMb: number;
  peakMb: number;
}

export function readMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Resets the peak to the current RSS, so the next peak belongs to what runs next. False when not allowed. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface CpuSample {
  at: number;
  /** CPU time of the server process (user + system, all threads), ms. */
  serverMs: number;
  /** CPU time of this process (the load generator), ms. */
  generatorMs: number;
  /** CPU time of each database backend process serving the server, ms. */
  databaseMs: Map<number, number>;
  /** Busy and total CPU time of the whole machine, ms summed over CPUs. */
  machineBusyMs: number;
  machineTotalMs: number;
}

function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime + stime
  } catch {
    return 0; // the process has exited
  }
}

export function sampleCpu(serverPid: number, databasePids: readonly number[] = []): CpuSample {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!; // idle + iowait
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const own = process.cpuUsage();
  return {
    at: performance.now(),
    serverMs: processCpuMs(serverPid),
    generatorMs: (own.user + own.system) / 1000,
    databaseMs: new Map(databasePids.map((pid) => [pid, processCpuMs(pid)])),
    machineBusyMs: (total - idle) * TICK_MS,
    machineTotalMs: total * TICK_MS,
  };
}

/** CPU use in cores (1 = one core fully busy) over a window. */
export interface CpuUse {
  server: number;
  generator: number;
  /** PostgreSQL backends serving the server (0 for the embedded database, which runs inside the server). */
  database: number;
  /** Everything else on the machine: helper processes, and anyone else's work. */
  other: number;
  serverMs: number;
}

/** `b` should list the database backends alive at its end; one that started during the window counts from 0. */
export function cpuBetween(a: CpuSample, b: CpuSample): CpuUse {
  const wallMs = b.at - a.at;
  const cores = (b.machineTotalMs - a.machineTotalMs) / wallMs;
  const busy = ((b.machineBusyMs - a.machineBusyMs) / (b.machineTotalMs - a.machineTotalMs)) * cores;
  const server = (b.serverMs - a.serverMs) / wallMs;
  const generator = (b.generatorMs - a.generatorMs) / wallMs;
  let databaseMs = 0;
  for (const [pid, ms] of b.databaseMs) databaseMs += ms - (a.databaseMs.get(pid) ?? 0);
  const database = databaseMs / wallMs;
  return { server, generator, database, other: Math.max(0, busy - server - generator - database), serverMs: b.serverMs - a.serverMs };
}

/** How busy the machine is (0..1 of all cores) over `ms`, measured before a run to detect other work. */
export async function machineBusy(ms = 1000): Promise<number> {
  const a = sampleCpu(process.pid);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = sampleCpu(process.pid);
  return (b.machineBusyMs - a.machineBusyMs) / (b.machineTotalMs - a.machineTotalMs);
}
