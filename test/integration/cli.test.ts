// The binary as operators use it: check-config's exit codes, and `run` as a process: readiness,
// config reload on SIGHUP (a bad config never replaces a good one), graceful SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codec } from '../../src/kafka/codec.js';
import { kafkaClient } from '../../src/kafka/processor.js';
import { publishActivity, waitForCatchUp } from '../../src/kafka/topic-tools.js';
import { createLogger } from '../../src/runtime/logger.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { isolatedConfig } from '../support/config.js';
import { freePort } from '../support/ports.js';

const CLI = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts')] as const;
const dir = mkdtempSync(join(tmpdir(), 'fairflag-cli-'));

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(CLI[0], [...CLI.slice(1), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
}

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('fairflag check-config', () => {
  it('accepts the defaults and exits 0 with the config version', () => {
    const r = cli(['check-config'], { FAIRFLAG__maxmind__allowTestDatabases: 'true' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^config OK: version cfg-[0-9a-f]{12}/);
    expect(r.stderr).toBe('');
  });

  it('warns of a signal that can never reach review, with the reason, and still exits 0', () => {
    const file = join(dir, 'hole.yaml');
    writeFileSync(
      file,
      'signals:\n  login: {concurrent_distant_sessions: {sufficientAlone: false}}\n  ip: {shared_by_accounts: {enabled: false}}\n  payment: {shared_instrument: {enabled: false}}\n',
    );
    const r = cli(['check-config', '--config', file], { FAIRFLAG__maxmind__allowTestDatabases: 'true' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(
      'warning: signals.login.concurrent_distant_sessions: can never reach review: alone in queue identity, nothing can corroborate it: 1 family (login); 2 needed or a signal sufficient alone\n',
    );
  });
  it('lists every problem with its path, exits 1, and names the file', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'signals:\n  login:\n    failed_burst:\n      threshold: ten\nreview:\n  action: suspend\n',
    );
    const r = cli(['check-config', '--config', file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'signals.login.failed_burst.threshold: expected a positive integer, got "ten"',
    );
    expect(r.stderr).toContain(
      'review.action: expected "review", the only action fairflag can take, got "suspend"',
    );
    expect(r.stderr).toContain(file);
  });

  it('refuses a config file that is not a regular file or is too large, at once, with exit 1', () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
    const cases: [string, RegExp][] = [
      ['/dev/zero', /\/dev\/zero: not a regular file \(a character device\)/],
      [dir, /: not a regular file \(a directory\)/],
      [big, /big\.yaml: 2097155 bytes, more than a config file may have \(1048576\)/],
    ];
    for (const [file, message] of cases) {
      const t0 = Date.now();
      const r = cli(['check-config', '--config', file]);
      expect(r.status, file).toBe(1);
      expect(r.stderr, file).toMatch(message);
      // it did not read /dev/zero until memory ran out
      expect(Date.now() - t0, file).toBeLessThan(30_000);
    }
  });

  it('exits 2 on a usage error', () => {
    const r = cli(['no-such-command']);
    expect(r.status).toBe(2);
  });
});

describe('fairflag run', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('becomes ready, reloads a valid config on SIGHUP, rejects an invalid one, and stops cleanly on SIGTERM', async () => {
    const loaded = isolatedConfig('cli');
    const port = await freePort();
    const c = loaded.config;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FAIRFLAG_GROUP_ID: c.kafka.groupId,
      FAIRFLAG_REDIS_KEY_PREFIX: c.redis.keyPrefix,
      FAIRFLAG_HTTP_PORT: String(port),
      FAIRFLAG_HTTP_HOST: '127.0.0.1',
      FAIRFLAG_LOG_LEVEL: 'info',
      FAIRFLAG__maxmind__allowTestDatabases: 'true',
      FAIRFLAG__registry__registerInputSubjects: 'true',
      ...Object.fromEntries(Object.entries(c.topics).map(([k, v]) => [`FAIRFLAG__topics__${k}`, String(v)])),
    };
    const file = join(dir, 'env.yaml');
    writeFileSync(file, 'signals:\n  login:\n    failed_burst:\n      threshold: 10\n');
    let output = '';
    child = spawn(CLI[0], [...CLI.slice(1), 'run', '--config', file], { cwd: PROJECT_ROOT, env });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));

    await until('readiness', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return r?.status === 200;
    });
    const live = await fetch(`http://127.0.0.1:${port}/livez`);
    expect(live.status).toBe(200);
    // the bind address is configurable (http.host, default 0.0.0.0)
    expect(output).toMatch(new RegExp(`"host":"127\\.0\\.0\\.1","port":${port},"msg":"health and metrics`));

    // events flow through the process
    const log = createLogger('cli-test');
    log.level = 'error';
    const kafka = kafkaClient(c.kafka, log, '-cli-test');
    const producer = kafka.producer();
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    const codec = await Codec.connect(c);
    const at = Date.now() - 60_000;
    await publishActivity(producer, codec, c.topics, [
      {
        family: 'login',
        event: {
          eventId: 'cli-1',
          accountId: 'acct-cli',
          occurredAt: at,
          outcome: 'FAILURE',
          ip: '175.16.199.1',
          deviceId: null,
          sessionId: null,
        },
      },
    ]);
    await waitForCatchUp(admin, c.kafka.groupId, [c.topics.login], 60_000);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `fairflag_events_total\\{topic="${c.topics.login.replace(/\./g, '\\.')}",outcome="processed"\\} 1`,
      ),
    );

    // an invalid config is rejected and the running one stays
    const versionBefore = /"configVersion":"(cfg-[0-9a-f]+)"/.exec(output)?.[1];
    expect(versionBefore).toBeDefined();
    writeFileSync(file, 'signals:\n  login:\n    failed_burst:\n      threshold: ten\n');
    child.kill('SIGHUP');
    await until('the rejection', () => output.includes('config reload rejected'));
    expect(output).toContain(
      'signals.login.failed_burst.threshold: expected a positive integer, got \\"ten\\"',
    );
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    // a valid one takes effect and is logged with its version
    writeFileSync(file, 'signals:\n  login:\n    failed_burst:\n      threshold: 12\n');
    child.kill('SIGHUP');
    await until('the reload', () => /config reloaded/.test(output));
    const versionAfter = /"configVersion":"(cfg-[0-9a-f]+)","previous":"(cfg-[0-9a-f]+)"/.exec(output);
    expect(versionAfter?.[2]).toBe(versionBefore);
    expect(versionAfter?.[1]).not.toBe(versionBefore);

    // SIGTERM: finish, commit, disconnect, exit 0
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"stopped"');
    const committed = await admin.fetchOffsets({ groupId: c.kafka.groupId, topics: [c.topics.login] });
    const total = committed[0]!.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    expect(total).toBe(1);
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
  });
});

describe('fairflag bootstrap (refusals; publishing is tested in bootstrap.test.ts)', () => {
  it('refuses what is not a regular file (exit 6) and a bad --from-line (exit 2), before connecting to anything', () => {
    const dev = cli(['bootstrap', '/dev/zero']);
    expect(dev.status).toBe(6);
    expect(dev.stderr).toMatch(/\/dev\/zero: not a regular file \(a character device\)/);
    const file = join(dir, 'snapshot.ndjson');
    writeFileSync(file, '{}\n');
    const bad = cli(['bootstrap', file, '--from-line', 'two']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--from-line: expected a line number, got "two"/);
  });
});
