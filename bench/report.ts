/** The targets, and the table that puts each figure next to its target with pass or miss. */
import type { Measurement } from './measurement.ts';
import type { ScenarioName } from './options.ts';
import type { SoakResult } from './mixed.ts';
import type { CpuUse } from './proc.ts';

export const TARGETS = {
  discovery: 8_000,
  'client-credentials': 2_000,
  refresh: 1_000,
  introspection: 3_000,
  /** Sign-ins/s as a share of the argon2 verify ceiling. */
  signInShare: 0.75,
  idleRssMb: 150,
} as const;

const LABELS: Record<ScenarioName, string> = {
  discovery: 'discovery  GET /.well-known/openid-configuration',
  jwks: 'JWKS  GET /jwks',
  'client-credentials': 'client credentials  POST /token',
  refresh: 'refresh grant  POST /token',
  introspection: 'introspection  POST /token/introspection',
  'sign-in': 'password sign-in, full flow incl. consent',
  mixed: 'mixed: token requests alone',
  argon2: 'argon2id verify (ceiling, same env)',
};

export interface Row {
  name: ScenarioName;
  /** Instead of the scenario's label (the mixed scenario's rows). */
  label?: string;
  /** False when the row shares its CPU window with another load (server ms/op would count both). */
  perOp?: boolean;
  /** A p99 target for this row (ms), e.g. token requests during sign-ins. */
  p99TargetMs?: number;
  /** The server's LATCHKEY_WORKERS for this row ("1", "auto (2)"). */
  workers: string;
  result: Measurement;
  /** CPU during the measured window, split by who used it (proc.ts). */
  cpu: CpuUse;
  /** PostgreSQL statements (autocommit transactions) per operation, approximately; undefined when not known. */
  statements: number | undefined;
  /** Peak RSS of the server during this scenario (MB); undefined for work outside the server. */
  peakMb: number | undefined;
}

/** One server process (a primary and its workers, or one process) and its memory, summed over its processes. */
export interface ServerRun {
  workers: string;
  /** The soak's samples, when it ran instead of the scenarios. */
  soak?: SoakResult;
  idleRssMb: number;
  peakRssMb: number;
}

export interface Report {
  title: string;
  notes: string[];
  rows: Row[];
  runs: ServerRun[];
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '—');
const verdict = (ok: boolean) => (ok ? 'pass' : 'MISS');

function target(row: Row, ceiling: number | undefined): [string, string] {
  const { name, result } = row;
  const clean = result.errors === 0;
  if (row.p99TargetMs !== undefined) return [`p99 < ${row.p99TargetMs} ms`, verdict(clean && result.p99Ms < row.p99TargetMs)];
  if (name === 'sign-in') {
    if (ceiling === undefined) return ['≥ 75% of argon2', '(no argon2 run)'];
    return [`≥ ${fmt(TARGETS.signInShare * ceiling, 1)}/s (75% of argon2)`, verdict(clean && result.perSecond >= TARGETS.signInShare * ceiling)];
  }
  if (name === 'discovery' || name === 'client-credentials' || name === 'refresh' || name === 'introspection') {
    return [`≥ ${fmt(TARGETS[name])}/s`, verdict(clean && result.perSecond >= TARGETS[name])];
  }
  return ['', clean ? '' : 'errors'];
}

export function formatReport(report: Report): string {
  const ceiling = report.rows.find((r) => r.name === 'argon2')?.result.perSecond;
  const head = ['scenario', 'workers', 'per s', 'p50 ms', 'p99 ms', 'errors', 'CPU: server', 'gen', 'db', 'other', 'server ms/op', 'db stmts/op', 'peak RSS MB', 'target', 'result'];
  const body = report.rows.map((row) => {
    const r = row.result;
    const digits = r.perSecond < 100 ? 1 : 0;
    const ms = (v: number) => fmt(v, v < 10 ? 2 : v < 100 ? 1 : 0);
    const inServer = row.name !== 'argon2';
    const perOp = inServer && row.perOp !== false;
    return [
      row.label ?? LABELS[row.name], inServer ? row.workers : '', fmt(r.perSecond, digits), ms(r.p50Ms), ms(r.p99Ms), fmt(r.errors),
      fmt(row.cpu.server, 2), fmt(row.cpu.generator, 2), fmt(row.cpu.database, 2), fmt(row.cpu.other, 2), perOp ? fmt(row.cpu.serverMs / r.operations, 3) : '',
      perOp && row.statements !== undefined ? `≈${fmt(row.statements, 1)}` : '',
      row.peakMb === undefined ? '' : fmt(row.peakMb), ...target(row, ceiling),
    ];
  });
  const widths = head.map((_, i) => Math.max(head[i]!.length, ...body.map((r) => r[i]!.length)));
  const numeric = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = report.rows.length === 0 ? [`== ${report.title}`, ...report.notes.map((n) => `   ${n}`), ''] : [`== ${report.title}`, ...report.notes.map((n) => `   ${n}`), '', line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line), ''];

  const several = report.runs.length > 1;
  for (const run of report.runs) if (run.soak) out.push(...soakTable(run.soak, several ? ` (workers ${run.workers})` : ''), '');
  for (const signIn of report.rows.filter((r) => r.name === 'sign-in')) {
    if (ceiling === undefined) break;
    const share = signIn.result.perSecond / ceiling;
    out.push(`sign-ins/s ÷ argon2 verifies/s${several ? ` (workers ${signIn.workers})` : ''} = ${fmt(signIn.result.perSecond, 1)} ÷ ${fmt(ceiling, 1)} = ${fmt(share * 100, 1)}%   target ≥ 75%   ${verdict(share >= TARGETS.signInShare)}`);
  }
  for (const run of report.runs) {
    const of = several ? ` (workers ${run.workers}, all its processes)` : '';
    out.push(`idle RSS after start-up${of} = ${fmt(run.idleRssMb)} MB   target ≤ ${TARGETS.idleRssMb} MB   ${verdict(run.idleRssMb <= TARGETS.idleRssMb)}`);
    out.push(`peak RSS of the server over the whole run${of}, start-up included = ${fmt(run.peakRssMb)} MB`);
  }
  out.push('CPU columns: cores in use during the measured window by the server process and its workers (all threads, argon2 included), the load');
  out.push('generator (this process), the PostgreSQL backends of the bench database, and everything else (for argon2: the probe;');
  out.push('otherwise other people\'s work on the machine, which makes that row unreliable when it is well above 0).');
  return `${out.join('\n')}\n`;
}

function soakTable(soak: SoakResult, of: string): string[] {
  const head = ['at s', 'RSS MB', 'token /s', 'token p50 ms', 'token p99 ms', 'token errors', 'sign-ins/s', 'sign-in errors'];
  const body = soak.windows.map((w) => [
    String(w.atS), fmt(w.rssMb), fmt(w.tokens.perSecond), fmt(w.tokens.p50Ms, 1), fmt(w.tokens.p99Ms, 1), fmt(w.tokens.errors), fmt(w.signInsPerSecond, 1), fmt(w.signInErrors),
  ]);
  const widths = head.map((_, i) => Math.max(head[i]!.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [
    `soak${of}: mixed scenario, a sample every 30 s`,
    line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line),
    `RSS ${soak.rssFlat ? 'stayed flat' : 'GREW'}; token p99 ${soak.p99Flat ? 'stayed flat' : 'GREW'}   (${soak.rule})`,
  ];
}
