/** What one scenario measured, and how a list of latencies becomes one. */
export interface Measurement {
  /** Completed operations per second (successful and failed alike; failures are counted in `errors`). */
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  operations: number;
}

export function summarize(latenciesMs: number[], seconds: number, errors: number): Measurement {
  const sorted = Float64Array.from(latenciesMs).sort();
  const at = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
  const operations = latenciesMs.length;
  return { perSecond: operations / seconds, p50Ms: at(0.5), p99Ms: at(0.99), errors, operations };
}

/** Runs `task` on `workers` concurrent loops until `seconds` have passed; each task's time is recorded. */
export async function loop(workers: number, seconds: number, task: (worker: number) => Promise<void>): Promise<Measurement> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: unknown;
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          await task(worker);
        } catch (err) {
          errors++;
          firstError ??= err;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  if (firstError) process.stderr.write(`  first error: ${(firstError as Error).message}\n`);
  return summarize(latencies, (performance.now() - started) / 1000, errors);
}
