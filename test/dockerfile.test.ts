/**
 * The image must carry everything the server reads from the project folder at run time: each folder the
 * code joins to `projectRoot` is copied into the final stage (the German strings were once left out). No
 * container engine runs here, so this reads the Dockerfile; it does not build it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { projectRoot } from '../src/paths.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sources(file) : name.endsWith('.ts') ? [file] : [];
  });
}

const read = (file: string) => readFileSync(path.join(projectRoot, file), 'utf8');

/** The instructions of the Dockerfile's last stage, continuation lines joined. */
function finalStage(): string {
  return read('Dockerfile').replace(/\\\n\s*/g, ' ').split(/^FROM /m).at(-1)!;
}

/** The JSON (exec) form of an instruction of the last stage, e.g. CMD ["node", "…"]. */
function execForm(instruction: string): string[] {
  const m = new RegExp(`^${instruction}\\s+(?:--\\S+\\s+)*(?:CMD\\s+)?(\\[.*\\])\\s*$`, 'm').exec(finalStage());
  assert.ok(m, `the last stage has ${instruction} in exec form`);
  return JSON.parse(m[1]!) as string[];
}

/** The COPY sources of the Dockerfile's last stage (`COPY --from=…` copies what the build stage made). */
function finalStageCopies(): string[] {
  const text = readFileSync(path.join(projectRoot, 'Dockerfile'), 'utf8');
  const last = text.split(/^FROM /m).at(-1)!;
  return [...last.matchAll(/^COPY\s+(--from=\S+\s+)?(\S+)\s+\S+$/gm)].map((m) => (m[1] ? `dist-of:${m[2]}` : m[2]!.replace(/^\.\//, '').replace(/\/$/, '')));
}

describe('the Dockerfile', () => {
  it('copies every folder the server reads at run time into the final image', () => {
    const read = new Set<string>();
    for (const file of sources(path.join(projectRoot, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/projectRoot, '([^']+)'/g)) read.add(m[1]!);
    }
    assert.ok(read.has('views') && read.has('locales'), 'the scan finds the folders the server reads');
    const copied = finalStageCopies();
    // node_modules comes from the build stage; src is only read for data files copied one by one.
    const missing = [...read].filter((dir) => dir !== 'node_modules' && dir !== 'src' && !copied.includes(dir));
    assert.deepEqual(missing, [], `COPY these into the final stage: ${missing.join(', ')}`);
    assert.ok(copied.includes('dist-of:/app/node_modules'), 'node_modules from the build stage');
    for (const data of copied.filter((c) => c.startsWith('src/'))) assert.ok(statSync(path.join(projectRoot, data)).isFile(), `${data} exists`);
  });

  it('runs the server the README and `npm start` run, as the unprivileged user, stopping on SIGTERM', () => {
    assert.deepEqual(execForm('CMD'), ['node', 'dist/src/main.js']);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; bin: Record<string, string> };
    assert.equal(pkg.scripts.start, 'exec node dist/src/main.js', 'npm start runs the same entry point');
    assert.equal(pkg.bin.latchkey, 'dist/src/admin/cli.js');
    assert.match(read('README.md'), /docker exec -it <container> node dist\/src\/admin\/cli\.js /, 'the README runs the CLI the image has');
    const stage = finalStage();
    assert.match(stage, /^USER node$/m);
    assert.match(stage, /^STOPSIGNAL SIGTERM$/m, 'SIGTERM drains (README, "Production deployment")');
  });

  it('checks the health on /healthz at the port it listens on and exposes, as the README says', () => {
    const stage = finalStage();
    const [cmd, ...args] = execForm('HEALTHCHECK');
    assert.equal(cmd, 'node');
    const script = args.at(-1)!;
    assert.match(script, /\/healthz'/);
    assert.match(script, /process\.env\.LATCHKEY_PORT\|\|3000/);
    assert.match(stage, /^HEALTHCHECK --interval=\d+s --timeout=\d+s --start-period=\d+s --retries=\d+\s+CMD /m);
    assert.match(stage, /LATCHKEY_PORT=3000\b/);
    assert.match(stage, /LATCHKEY_HOST=0\.0\.0\.0\b/);
    assert.match(stage, /^EXPOSE 3000$/m);
    assert.match(read('src/http/health.ts'), /ctx\.path === '\/healthz'/, 'the server answers /healthz');
    const readme = read('README.md');
    assert.match(readme, /docker run -p 3000:3000/);
    assert.match(readme, /health check on\s+`\/healthz`/);
    // The embedded database's folder is the volume the README names.
    assert.match(stage, /LATCHKEY_DATA_DIR=\/data\b/);
    assert.match(stage, /^VOLUME \["\/data"\]$/m);
    assert.match(readme, /declares `\/data` as a volume/);
  });

  it('builds reproducibly: a base image pinned by digest, dependencies from the lock file only', () => {
    const text = read('Dockerfile');
    const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];
    assert.match(image ?? '', /^node:24-[a-z0-9-]+@sha256:[0-9a-f]{64}$/, 'the base image is pinned by digest');
    const froms = [...text.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length >= 2 && froms.every((f) => f === '${NODE_IMAGE}'), `every stage starts from the pinned image: ${froms.join(', ')}`);
    assert.match(text, /^COPY package\.json package-lock\.json \.\/$/m);
    assert.match(text, /^RUN npm ci\b/m);
    assert.doesNotMatch(text, /npm install|npm i\b|curl|wget|apt-get/, 'nothing is fetched outside the lock file');
    assert.match(text, /^ARG SOURCE_DATE_EPOCH$/m);
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['.git', 'node_modules', 'dist', 'data', '.env', '.env.*']) assert.ok(ignored.includes(entry), `.dockerignore leaves out ${entry}`);
  });
});

describe('the docker compose set-up', () => {
  type Service = { build?: { context: string; dockerfile: string }; image?: string; environment?: Record<string, string>; env_file?: string; depends_on?: Record<string, { condition: string }>; volumes?: string[]; networks?: Record<string, { ipv4_address?: string }> | string[] };
  const compose = parseYaml(read('deploy/docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
  const instances = ['latchkey-1', 'latchkey-2', 'latchkey-3'];

  it('runs 3 instances of the project\'s image, one after the other, with the same settings', () => {
    for (const name of instances) {
      const s = compose.services[name]!;
      assert.deepEqual(s.build, { context: '..', dockerfile: 'Dockerfile' }, `${name} is built from the project's Dockerfile`);
      assert.equal(s.env_file, 'latchkey.env', `${name} reads the shared secrets`);
      assert.deepEqual(s.environment, compose.services['latchkey-1']!.environment, `${name} has the same environment`);
    }
    assert.ok(statSync(path.join(projectRoot, 'deploy', 'latchkey.env.example')).isFile());
    assert.deepEqual(Object.keys(compose.services['latchkey-2']!.depends_on!), ['latchkey-1']);
    assert.deepEqual(Object.keys(compose.services['latchkey-3']!.depends_on!), ['latchkey-2']);
  });

  it('believes forwarded headers from the proxy only, and gives the nginx template every value it names', () => {
    const proxy = compose.services.proxy!;
    const address = (proxy.networks as Record<string, { ipv4_address?: string }>).backend!.ipv4_address;
    assert.equal(compose.services['latchkey-1']!.environment!.LATCHKEY_TRUSTED_PROXIES, address);
    assert.equal(compose.services['latchkey-1']!.environment!.LATCHKEY_TLS_TERMINATED_BY_PROXY, 'true');
    const template = read('deploy/nginx/latchkey.conf.template');
    const mounted = proxy.volumes!.find((v) => v.includes('/etc/nginx/templates/'))!;
    assert.equal(mounted.split(':')[0], './nginx/latchkey.conf.template');
    const names = new Set([...template.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!));
    const missing = [...names].filter((n) => proxy.environment![n] === undefined);
    assert.deepEqual(missing, [], 'the proxy sets every placeholder');
    assert.deepEqual(instances.map((_, i) => proxy.environment![`LATCHKEY_UPSTREAM_${i + 1}`]), instances.map((n) => `${n}:3000`));
  });

  it('lets nginx retry a POST only when it was never sent, and replaces the forwarded headers', () => {
    const template = read('deploy/nginx/latchkey.conf.template').replace(/#[^\n]*/g, '');
    const next = /proxy_next_upstream ([^;]+);/.exec(template)?.[1] ?? '';
    assert.match(next, /\berror\b/);
    assert.doesNotMatch(next, /non_idempotent/);
    assert.match(template, /proxy_set_header X-Forwarded-For \$remote_addr;/);
    assert.match(template, /proxy_set_header X-Forwarded-Proto \$scheme;/);
    assert.doesNotMatch(template, /\$proxy_add_x_forwarded_for/);
  });
});
