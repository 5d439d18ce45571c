/**
 * `npm run try:cluster [-- --port 8443] [postgres://…/postgres]`: the load-balanced set-up (deploy/cluster.ts)
 * until Ctrl-C or SIGTERM, which stop everything and drop the database.
 */
import { parseArgs } from 'node:util';
import { startCluster } from './cluster.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string' }, 'first-instance-port': { type: 'string' }, keep: { type: 'boolean' } },
});
const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));

const cluster = await startCluster({
  ...(positionals[0] ? { serverUrl: positionals[0] } : {}),
  ...(values.port ? { port: number(values.port)! } : {}),
  ...(values['first-instance-port'] ? { firstInstancePort: number(values['first-instance-port'])! } : {}),
  keepRunDir: !!values.keep,
  env: { LATCHKEY_ENV: process.env.LATCHKEY_ENV ?? 'development' },
});
const link = cluster.setupLink();
process.stdout.write([
  '',
  `  Latchkey behind nginx. Issuer: ${cluster.issuer}`,
  `  Discovery: ${cluster.issuer}/.well-known/openid-configuration`,
  `  Certificate (self-signed; trust it or accept the warning): ${cluster.certificateFile}`,
  ...cluster.instances.map((i) => `  Instance ${i.index + 1}: ${i.url} (pid ${i.pid})`),
  `  Logs: ${cluster.runDir}`,
  ...(link ? ['', '  No administrator exists yet. Open this one-time link to create one:', `  ${link}`] : []),
  '',
  '  Ctrl-C stops everything and drops the database.',
  '',
].join('\n'));

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`\n  ${signal}: stopping the instances and nginx, dropping the database…\n`);
  cluster.stop().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`latchkey cluster: ${(err as Error).message}\n`);
    process.exit(1);
  });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
