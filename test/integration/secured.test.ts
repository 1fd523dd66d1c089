// fairflag against a secured Kafka (SASL_SSL only, a private CA, SCRAM users) and a registry behind
// nginx (TLS, basic auth), on a stack instance this file starts and removes. The reference
// scenarios give their expected flags over it; a wrong password, a certificate not trusted and a
// wrong registry credential each end start-up within seconds with exit code 3, naming the
// endpoint and the cause; no secret shows in a config dump or in the logs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Codec } from '../../src/kafka/codec.js';
import { kafkaClient } from '../../src/kafka/connection.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { createLogger } from '../../src/runtime/logger.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { DAY, HOUR, accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { isolatedEnv } from '../support/config.js';
import { Harness } from '../support/pipeline.js';
import { startSecuredStack, type SecuredStack } from '../support/secured-stack.js';
import { freePort } from '../support/ports.js';

const CLI = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts')] as const;
const dir = mkdtempSync(join(tmpdir(), 'fairflag-secured-'));

/** Everything a processor of this file needs: the secured stack's client settings, its own topics. */
const envFor = (stack: SecuredStack, name: string, extra: Record<string, string> = {}) =>
  isolatedEnv(name, stack, 's', { ...stack.client, ...extra });

/** `fairflag run` as a process that is expected to give up: its exit code, output and time taken. */
function runExpectingFailure(env: Record<string, string>) {
  const t0 = Date.now();
  const r = spawnSync(CLI[0], [...CLI.slice(1), 'run'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return {
    status: r.status,
    stderr: r.stderr,
    output: r.stdout + r.stderr,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** An unsigned JWT, as Kafka's unsecured development validator takes for OAUTHBEARER. */
function unsecuredJwt(sub: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'none' })}.${part({ sub, iat: now, exp: now + 3600 })}.`;
}

describe('a secured Kafka and registry', () => {
  let stack: SecuredStack;
  let h: Harness | undefined;
  /** The scenarios' processor environment (its topics), for the tools that read them again. */
  let scenarioEnv: Record<string, string> = {};
  let takeoverId = '';

  beforeAll(async () => {
    const t0 = Date.now();
    stack = await startSecuredStack();
    console.log(
      `[secured stack] up in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${stack.kafkaBrokers.join(',')}, ${stack.registryUrl}`,
    );
  }, 180_000);
  afterAll(async () => {
    await h?.stop();
    await stack?.stop();
  }, 60_000);

  it('the reference scenarios over TLS + SCRAM-SHA-512 and the registry behind nginx give the expected flags', async () => {
    const runId = Date.now().toString(36);
    const a = travellingFreelancer(Date.now() - 11 * DAY, runId);
    const b = accountTakeover(Date.now() - 2 * HOUR, runId);
    scenarioEnv = envFor(stack, 'scenarios');
    takeoverId = b.accountId;
    const loaded = loadConfig({ env: scenarioEnv });
    expect(loaded.config.kafka.ssl.enabled).toBe(true);
    expect(loaded.config.kafka.sasl.mechanism).toBe('scram-sha-512');
    expect(loaded.config.registry.url).toMatch(/^https:/);
    h = await new Harness(loaded).start();
    await h.publishPhases([
      [...a.phases[0]!, ...b.phases[0]!],
      [...a.phases[1]!, ...b.phases[1]!],
    ]);
    const flags = await h.flags();
    expect(flags.filter((f) => f.accountId === a.accountId)).toEqual([]);
    const takeover = flags.filter((f) => f.accountId === b.accountId);
    expect(takeover).toHaveLength(1);
    expect(takeover[0]).toMatchObject({
      action: 'REVIEW',
      reviewQueue: 'account_security',
      severity: 'high',
    });
    expect(takeover[0]!.signals.map((s) => s.id)).toEqual(
      expect.arrayContaining([
        'login.failed_burst',
        'login.impossible_travel',
        'login.new_device',
        'login.new_country',
        'payment.added_after_risky_login',
      ]),
    );
    expect(await h.deadLetters()).toEqual([]);
  });

  it('replay --from-kafka reads the same topics over the same secured connections', () => {
    const r = spawnSync(
      CLI[0],
      [
        ...CLI.slice(1),
        'replay',
        '--from-kafka',
        '--since',
        String(Date.now() - 3 * 365 * DAY),
        '--json',
        '--no-progress',
      ],
      { cwd: PROJECT_ROOT, env: { ...process.env, ...scenarioEnv }, encoding: 'utf8', timeout: 90_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      rejected: unknown[];
      flags: { accountId: string; severity: string }[];
    };
    expect(out.rejected).toEqual([]);
    expect(out.flags.filter((f) => f.accountId === takeoverId).map((f) => f.severity)).toEqual(['high']);
  });

  it('connects with each mechanism the broker offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, unsecuredJwt('fairflag'));
    const log = createLogger('fairflag-test');
    log.level = 'error';
    const cases: Record<string, string>[] = [
      { FAIRFLAG_KAFKA_SASL_MECHANISM: 'plain' },
      { FAIRFLAG_KAFKA_SASL_MECHANISM: 'scram-sha-256' },
      { FAIRFLAG_KAFKA_SASL_MECHANISM: 'scram-sha-512' },
      {
        FAIRFLAG_KAFKA_SASL_MECHANISM: 'oauthbearer',
        FAIRFLAG_KAFKA_SASL_USERNAME: '',
        FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: '',
        FAIRFLAG_KAFKA_SASL_TOKEN_FILE: tokenFile,
      },
    ];
    for (const extra of cases) {
      const env = { ...stack.client, ...extra };
      // the named variables ignore empty values: drop what does not belong to the mechanism
      for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
      const { config } = loadConfig({ env });
      const admin = kafkaClient(config.kafka, log, '-mechanisms').admin();
      await admin.connect();
      try {
        const topics = await admin.listTopics();
        expect(topics, extra['FAIRFLAG_KAFKA_SASL_MECHANISM']).toContain('__consumer_offsets');
      } finally {
        await admin.disconnect();
      }
    }
  });

  it('a wrong Kafka password ends start-up within seconds, exit 3, naming the broker and the cause', () => {
    const r = runExpectingFailure(
      envFor(stack, 'wrong-password', {
        FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: '',
        FAIRFLAG_KAFKA_SASL_PASSWORD: 'not-the-password',
      }),
    );
    expect(r.status, r.output).toBe(3);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain(
      `fairflag: Kafka broker ${stack.kafkaBrokers[0]}: SASL SCRAM-SHA-512 authentication of user "fairflag" refused`,
    );
    expect(r.stderr).toMatch(/invalid credentials/);
    expect(r.output).not.toContain('not-the-password');
  });

  it('a broker certificate nobody trusts ends start-up within seconds, exit 3, naming the broker and the cause', () => {
    const r = runExpectingFailure({ ...envFor(stack, 'untrusted'), FAIRFLAG_KAFKA_SSL_CA_FILE: '' });
    expect(r.status, r.output).toBe(3);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain(
      `fairflag: Kafka broker ${stack.kafkaBrokers[0]}: TLS: the broker's certificate is not accepted (SELF_SIGNED_CERT_IN_CHAIN`,
    );
    expect(r.stderr).toContain('set kafka.ssl.caFile to the CA that signed it');
  });

  it('a wrong registry credential ends start-up within seconds, exit 3, naming the registry and the cause', () => {
    const r = runExpectingFailure(
      envFor(stack, 'wrong-registry', {
        FAIRFLAG_REGISTRY_PASSWORD_FILE: '',
        FAIRFLAG_REGISTRY_PASSWORD: 'not-the-registry-password',
      }),
    );
    expect(r.status, r.output).toBe(3);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain(
      `fairflag: schema registry at ${stack.registryUrl}: credentials refused (HTTP 401 Unauthorized; basic auth as user "fairflag" sent)`,
    );
    expect(r.output).not.toContain('not-the-registry-password');
  });

  it('a registry certificate nobody trusts ends start-up the same way', () => {
    const r = runExpectingFailure({ ...envFor(stack, 'untrusted-registry'), FAIRFLAG_REGISTRY_CA_FILE: '' });
    expect(r.status, r.output).toBe(3);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain(
      `fairflag: schema registry at ${stack.registryUrl}: TLS: its certificate is not accepted`,
    );
  });

  it('a bearer token from a file works as well, and a refused token ends start-up the same way', async () => {
    const tokenFile = join(dir, 'registry-token');
    writeFileSync(tokenFile, `${stack.secret('registry-token')}\n`);
    // nginx takes the token instead of basic auth under /bearer/
    const url = stack.registryUrl.replace('/apis/', '/bearer/apis/');
    const env = envFor(stack, 'bearer', {
      FAIRFLAG_REGISTRY_URL: url,
      FAIRFLAG_REGISTRY_USERNAME: '',
      FAIRFLAG_REGISTRY_PASSWORD_FILE: '',
      FAIRFLAG_REGISTRY_TOKEN_FILE: tokenFile,
    });
    const { config } = loadConfig({ env });
    expect(config.registry.username).toBeNull();
    const codec = await Codec.connect(config);
    expect(codec.idOf('flag')).toBeGreaterThan(0);
    writeFileSync(tokenFile, 'not-the-token\n');
    const r = runExpectingFailure(env);
    expect(r.status, r.output).toBe(3);
    expect(r.seconds).toBeLessThan(20);
    expect(r.stderr).toContain(
      `fairflag: schema registry at ${url}: credentials refused (HTTP 401 Unauthorized; bearer auth sent)`,
    );
    expect(r.output).not.toContain('not-the-token');
  });

  it('no secret shows: not in check-config --print, not in a running processor’s logs', async () => {
    const secrets = [stack.secret('kafka-fairflag'), stack.secret('registry-fairflag')];
    // given as values (not files) so that the config holds them
    const env = envFor(stack, 'no-secrets', {
      FAIRFLAG_KAFKA_SASL_PASSWORD_FILE: '',
      FAIRFLAG_KAFKA_SASL_PASSWORD: secrets[0]!,
      FAIRFLAG_REGISTRY_PASSWORD_FILE: '',
      FAIRFLAG_REGISTRY_PASSWORD: secrets[1]!,
      FAIRFLAG_LOG_LEVEL: 'debug',
    });
    for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
    const printed = spawnSync(CLI[0], [...CLI.slice(1), 'check-config', '--print'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(printed.status, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('password: "[redacted]"');
    for (const s of secrets) expect(printed.stdout + printed.stderr).not.toContain(s);

    const port = await freePort();
    const child = spawn(CLI[0], [...CLI.slice(1), 'run'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env, FAIRFLAG_HTTP_PORT: String(port), FAIRFLAG_HTTP_HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    // ready means Kafka joined, and the registry answered its check through nginx with the credentials
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      if (r?.status === 200) break;
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`fairflag run not ready:\n${output}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    child.kill('SIGTERM');
    expect(await exited, output).toBe(0);
    expect(output).toContain('"msg":"starting fairflag"');
    for (const s of secrets) expect(output).not.toContain(s);
  });
});
