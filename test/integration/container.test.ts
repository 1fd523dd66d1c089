// The container files without a Docker engine: scripts/Dockerfile's stages, user, health check and
// entrypoint are read from the file, and its runtime stage is laid out in a folder (the files it
// copies, production dependencies only, the compiled dist/ of `npm run build`) where the
// entrypoint starts the processor against the real services. docker-compose.yml is checked by
// profile: what each starts, and that no consumer group mixes two state stores.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Codec } from '../../src/kafka/codec.js';
import { kafkaClient } from '../../src/kafka/processor.js';
import { publishActivity } from '../../src/kafka/topic-tools.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { createLogger } from '../../src/runtime/logger.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';
import { freePort } from '../support/ports.js';

interface Instruction {
  op: string;
  args: string;
}

/** A Dockerfile's instructions by stage (continuation lines joined, comments dropped). */
function dockerfileStages(text: string): { name: string; instructions: Instruction[] }[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: { name: string; instructions: Instruction[] }[] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!op) throw new Error(`unreadable Dockerfile line: ${line}`);
    if (op.toUpperCase() === 'FROM')
      stages.push({ name: /\bAS\s+(\S+)/i.exec(args!)?.[1] ?? `stage${stages.length}`, instructions: [] });
    stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args: args!.trim() });
  }
  return stages;
}

const DOCKERFILE = join(PROJECT_ROOT, 'scripts/Dockerfile');
const stages = dockerfileStages(readFileSync(DOCKERFILE, 'utf8'));
const runtime = stages.at(-1)!;
const all = (stage: { instructions: Instruction[] }, op: string) =>
  stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const exec = (op: string) => JSON.parse(all(runtime, op).at(-1)!) as string[];

/** COPY [--from=x] src... dest */
function copies(stage: { instructions: Instruction[] }) {
  return all(stage, 'COPY').map((args) => {
    const words = args.split(/\s+/);
    const from = /^--from=(\S+)$/.exec(words[0]!)?.[1];
    const paths = from ? words.slice(1) : words;
    return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

describe('scripts/Dockerfile', () => {
  it('builds in one stage and runs production dependencies and dist/ only in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => all(s, 'RUN').some((r) => r.includes('npm run build')));
    expect(build, 'a stage runs npm run build').toBeDefined();
    expect(build).not.toBe(runtime);
    // the runtime stage installs nothing itself and takes node_modules from a production install
    expect(all(runtime, 'RUN').join('\n')).not.toMatch(/npm (ci|install)/);
    const modules = copies(runtime).find((c) => c.dest.includes('node_modules'))!;
    const deps = stages.find((s) => s.name === modules.from)!;
    expect(all(deps, 'RUN').join('\n')).toMatch(/npm ci --omit=dev/);
    expect(copies(runtime).find((c) => c.dest.endsWith('dist'))?.from).toBe(build!.name);
    expect(
      readFileSync(DOCKERFILE, 'utf8')
        .split(/^FROM /m)
        .at(-1),
    ).not.toMatch(/\btsx\b/);
  });

  it('runs as an unprivileged user, checks /livez and starts node dist/src/cli.js', () => {
    const user = all(runtime, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(all(runtime, 'HEALTHCHECK').join(' ')).toContain(
      "'http://127.0.0.1:' + (process.env.FAIRFLAG_HTTP_PORT || 9464) + '/livez'",
    );
    expect(exec('ENTRYPOINT')).toEqual(['node', 'dist/src/cli.js']);
    expect(exec('CMD')).toEqual(['run']);
    expect(all(runtime, 'ENV')).toContain('FAIRFLAG_MAXMIND_DIR=/data/maxmind');
  });

  it('copies from the build context only what its .dockerignore lets in', () => {
    const allowed = readFileSync(`${DOCKERFILE}.dockerignore`, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/\*\*$/, ''));
    for (const stage of stages)
      for (const c of copies(stage).filter((c) => !c.from))
        for (const src of c.sources) {
          expect(existsSync(join(PROJECT_ROOT, src)), src).toBe(true);
          expect(
            allowed.some((a) => src === a || src.startsWith(`${a}/`)),
            `${src} is excluded by the .dockerignore`,
          ).toBe(true);
        }
  });
});

describe("the runtime stage's layout, started by its entrypoint", () => {
  const image = mkdtempSync(join(tmpdir(), 'fairflag-image-'));
  const maxmind = join(image, 'data-maxmind');
  let child: ChildProcess | undefined;

  beforeAll(() => {
    // the build stage: npm run build, into the image folder's dist/
    const built = spawnSync('npm', ['run', 'build', '--', '--outDir', join(image, 'dist')], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    expect(built.status, built.stdout + built.stderr).toBe(0);
    // the deps stage: the packages package-lock.json does not mark dev-only
    const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    for (const [path, p] of Object.entries(lock.packages)) {
      if (!path.startsWith('node_modules/') || path.lastIndexOf('node_modules/') !== 0 || p.dev) continue;
      const at = join(image, path);
      mkdirSync(dirname(at), { recursive: true });
      symlinkSync(join(PROJECT_ROOT, path), at);
    }
    expect(existsSync(join(image, 'node_modules/kafkajs'))).toBe(true);
    expect(existsSync(join(image, 'node_modules/tsx'))).toBe(false);
    // the runtime stage's copies from the build context
    for (const c of copies(runtime).filter((c) => !c.from))
      for (const src of c.sources)
        cpSync(join(PROJECT_ROOT, src), join(image, c.dest.endsWith('/') ? join(c.dest, src) : c.dest), {
          recursive: true,
        });
    // the mounted databases, by MaxMind's file names
    mkdirSync(maxmind);
    for (const db of ['GeoIP2-City', 'GeoLite2-ASN', 'GeoIP2-Anonymous-IP', 'GeoIP2-Connection-Type'])
      cpSync(join(PROJECT_ROOT, `test/fixtures/maxmind/${db}-Test.mmdb`), join(maxmind, `${db}.mmdb`));
  }, 180_000);

  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(image, { recursive: true, force: true });
  });

  const entrypoint = exec('ENTRYPOINT');
  const imageEnv = (extra: Record<string, string> = {}) => ({
    PATH: process.env['PATH'],
    NODE_ENV: 'production',
    FAIRFLAG_MAXMIND_DIR: maxmind,
    ...extra,
  });
  const cli = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(entrypoint[0]!, [...entrypoint.slice(1), ...args], {
      cwd: image,
      env: imageEnv(env),
      encoding: 'utf8',
    });

  it('prints its help and exits 0', () => {
    const r = cli(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\s+run\b/m);
    expect(r.stdout).toMatch(/^\s+check-config\b/m);
  });

  it('accepts its default config with the databases mounted, and refuses a bad one with exit 1', () => {
    const ok = cli(['check-config']);
    expect(ok.stdout).toMatch(/^config OK: version cfg-[0-9a-f]{12}/);
    expect(ok.status).toBe(0);
    const bad = cli(['check-config'], { FAIRFLAG__processing__attempts: 'lots' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('processing.attempts: expected a positive integer, got "lots"');
  });

  it('runs the processor: /livez, /readyz and its health check pass, reloads show in the metrics, SIGTERM exits 0', async () => {
    const port = await freePort();
    const configFile = join(image, 'fairflag.yaml');
    writeFileSync(configFile, 'signals:\n  login:\n    failed_burst:\n      threshold: 10\n');
    const env = imageEnv({
      ...isolatedEnv('container', endpoints(), 't'),
      FAIRFLAG_HTTP_PORT: String(port),
      FAIRFLAG_COMMIT: 'c0ffee',
      FAIRFLAG_CONFIG: configFile,
    });
    let output = '';
    const c = spawn(entrypoint[0]!, [...entrypoint.slice(1), ...exec('CMD')], { cwd: image, env });
    child = c;
    c.stdout.on('data', (d: Buffer) => (output += d.toString()));
    c.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => c.once('exit', r));
    const ok = (path: string) =>
      fetch(`http://127.0.0.1:${port}${path}`).then(
        (r) => r.ok,
        () => false,
      );
    const deadline = Date.now() + 90_000;
    while (!(await ok('/readyz'))) {
      if (Date.now() > deadline || c.exitCode !== null) throw new Error(`not ready: ${output}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(await ok('/livez')).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^fairflag_build_info\{version="[^"]+",commit="c0ffee"\} 1$/m);
    // the image's HEALTHCHECK command, with the container's environment: passes, and fails on a
    // port nothing listens on
    const probe = JSON.parse(/CMD\s+(\[.*\])$/.exec(all(runtime, 'HEALTHCHECK').at(-1)!)![1]!) as string[];
    const check = (p: number) =>
      spawnSync(probe[0]!, probe.slice(1), { env: imageEnv({ FAIRFLAG_HTTP_PORT: String(p) }) }).status;
    expect(check(port)).toBe(0);
    expect(check(await freePort())).toBe(1);

    // config reloads: a rejected one shows at once; an applied one from the next batch on
    const scrape = async () => await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const configVersion = (m: string) => /^fairflag_config_info\{version="([^"]+)"\} 1$/m.exec(m)?.[1];
    const reloadOk = (m: string) => /^fairflag_config_last_reload_successful (\d)$/m.exec(m)?.[1];
    const first = configVersion(metrics);
    expect(first).toMatch(/^cfg-/);
    expect(reloadOk(metrics)).toBe('1');
    writeFileSync(configFile, 'signals:\n  login:\n    failed_burst:\n      threshold: ten\n');
    c.kill('SIGHUP');
    await until(async () => reloadOk(await scrape()) === '0');
    expect(configVersion(await scrape())).toBe(first);
    writeFileSync(configFile, 'signals:\n  login:\n    failed_burst:\n      threshold: 12\n');
    c.kill('SIGHUP');
    await until(async () => reloadOk(await scrape()) === '1');
    const loaded = loadConfig({ env });
    const log = createLogger('container-test');
    log.level = 'error';
    const kafka = kafkaClient(loaded.config.kafka, log, '-container-test');
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const at = Date.now() - 60_000;
      const event = { eventId: 'ct-1', accountId: 'acct-ct', occurredAt: at, outcome: 'FAILURE' as const };
      await publishActivity(producer, await Codec.connect(loaded.config), loaded.config.topics, [
        { family: 'login', event: { ...event, ip: '175.16.199.1', deviceId: null, sessionId: null } },
      ]);
    } finally {
      await producer.disconnect();
    }
    await until(async () => {
      const v = configVersion(await scrape());
      return v !== undefined && v !== first;
    });
    expect(output).toContain(`"configVersion":"${configVersion(await scrape())}"`);
    c.kill('SIGTERM');
    expect(await exited, output).toBe(0);
  });
});

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown>;
}

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8'), {
    merge: true,
  }) as { services: Record<string, Service> };
  const services = Object.entries(compose.services);
  const defaultGroup = loadConfig({ env: {} }).config.kafka.groupId;

  it('names a pinned image or an existing Dockerfile for every service, and existing mounts', () => {
    for (const [name, s] of services) {
      if (s.build) {
        expect(existsSync(join(PROJECT_ROOT, s.build.context, s.build.dockerfile)), name).toBe(true);
      } else {
        expect(s.image, name).toMatch(/^[\w./-]+:[\w.-]+$/);
        expect(s.image, name).not.toMatch(/:latest$/);
      }
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0]!;
        if (host.startsWith('.')) expect(existsSync(join(PROJECT_ROOT, host)), `${name}: ${v}`).toBe(true);
      }
    }
  });

  it('never starts two state stores in one consumer group, whatever the profiles', () => {
    const started = (profiles: string[]) =>
      services.filter(([, s]) => !s.profiles || s.profiles.some((p) => profiles.includes(p)));
    const processors = (profiles: string[]) =>
      started(profiles)
        .filter(([, s]) => s.build?.dockerfile === 'scripts/Dockerfile')
        .map(([name, s]) => {
          const e = s.environment ?? {};
          return {
            name,
            group: e['FAIRFLAG_GROUP_ID'] ?? defaultGroup,
            store: e['FAIRFLAG_REDIS_CLUSTER_NODES'] ?? e['FAIRFLAG_REDIS_URL'] ?? 'default',
          };
        });
    for (const profiles of [[], ['single'], ['cluster'], ['single', 'cluster']]) {
      const stores = new Map<string, Set<string>>();
      for (const p of processors(profiles))
        stores.set(p.group, (stores.get(p.group) ?? new Set()).add(p.store));
      for (const [group, s] of stores) expect(s.size, `${profiles.join('+')}: group ${group}`).toBe(1);
      // what a service waits for is started with it
      const names = new Set(started(profiles).map(([n]) => n));
      for (const [name, s] of started(profiles))
        for (const dep of Object.keys(s.depends_on ?? {})) expect(names, `${name} -> ${dep}`).toContain(dep);
    }
    expect(processors([]).map((p) => p.name)).toEqual([]);
    expect(processors(['single']).map((p) => p.name)).toEqual(['processor']);
    const cluster = processors(['cluster']);
    expect(cluster.map((p) => p.name)).toEqual(['processor-a', 'processor-b']);
    expect(new Set(cluster.map((p) => p.group)).size).toBe(1);
    expect(cluster[0]!.store).toContain('redis-node-1');
  });
});

async function until(check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 300));
  }
}
