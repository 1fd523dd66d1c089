// vitest globalSetup for the integration project: find or start real Kafka, schema registry and Redis.
//
// Order:
//   1. FAIRFLAG_KAFKA_BROKERS, FAIRFLAG_REGISTRY_URL and FAIRFLAG_REDIS_URL all set: use them.
//   2. A Docker engine answers: start throwaway containers with testcontainers (stopped in teardown).
//   3. Otherwise: `bash scripts/stack.sh up` (idempotent; left running afterwards so the next run
//      reuses it; `scripts/stack.sh down` stops it).
//
// The endpoints reach tests through vitest's provide/inject (test/support/endpoints.ts) and reach
// child processes spawned by tests through process.env.FAIRFLAG_*.
import { execFile, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { StartedTestContainer } from 'testcontainers';
import type { TestProject } from 'vitest/node';
import type { Endpoints } from './endpoints.js';
import { freePort } from './ports.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const STACK_SCRIPT = resolve(ROOT, 'scripts/stack.sh');
const DOCKER_DETECT_TIMEOUT_MS = 5_000;

const KAFKA_IMAGE = 'apache/kafka:3.9.2';
const REGISTRY_IMAGE = 'apicurio/apicurio-registry:3.3.3';
const REDIS_IMAGE = 'redis:7.4';

type Found = { endpoints: Endpoints; teardown?: () => Promise<void> };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const found = fromEnvironment() ?? (await fromContainers()) ?? (await fromStack());
  const { endpoints } = found;

  process.env.FAIRFLAG_KAFKA_BROKERS = endpoints.kafkaBrokers.join(',');
  process.env.FAIRFLAG_REGISTRY_URL = endpoints.registryUrl;
  process.env.FAIRFLAG_REDIS_URL = endpoints.redisUrl;
  project.provide('endpoints', endpoints);

  console.log(
    `[test services] ${describeSource(endpoints.source)}: kafka ${endpoints.kafkaBrokers.join(',')}, ` +
      `registry ${endpoints.registryUrl}, redis ${endpoints.redisUrl}`,
  );

  return async () => {
    await found.teardown?.();
  };
}

function describeSource(source: Endpoints['source']): string {
  switch (source) {
    case 'environment':
      return 'using FAIRFLAG_* from the environment';
    case 'containers':
      return 'using testcontainers (Docker)';
    case 'stack':
      return 'using the local stack (scripts/stack.sh)';
  }
}

function fromEnvironment(): Found | undefined {
  const { FAIRFLAG_KAFKA_BROKERS, FAIRFLAG_REGISTRY_URL, FAIRFLAG_REDIS_URL } = process.env;
  if (!FAIRFLAG_KAFKA_BROKERS || !FAIRFLAG_REGISTRY_URL || !FAIRFLAG_REDIS_URL) return undefined;
  return {
    endpoints: {
      kafkaBrokers: splitBrokers(FAIRFLAG_KAFKA_BROKERS),
      registryUrl: FAIRFLAG_REGISTRY_URL,
      redisUrl: FAIRFLAG_REDIS_URL,
      source: 'environment',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Docker, through testcontainers
// ---------------------------------------------------------------------------------------------

async function fromContainers(): Promise<Found | undefined> {
  // Imported lazily: loading testcontainers costs time that the other two paths do not need.
  const tc = await import('testcontainers');
  let host: string;
  try {
    // testcontainers' own detection (DOCKER_HOST, ~/.testcontainers.properties, sockets), bounded:
    // on a machine with only the docker client it fails fast, but a dead remote host could hang.
    const client = await withTimeout(tc.getContainerRuntimeClient(), DOCKER_DETECT_TIMEOUT_MS);
    host = client.info.containerRuntime.host;
  } catch {
    return undefined;
  }

  // Kafka must advertise an address the host can reach, which includes the host port. Pick a free
  // port and bind the container's listener to the same number, so it is known before start.
  const kafkaPort = await freePort();
  const kafka = new tc.GenericContainer(KAFKA_IMAGE)
    .withExposedPorts({ container: kafkaPort, host: kafkaPort })
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_LISTENERS: `EXTERNAL://0.0.0.0:${kafkaPort},INTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093`,
      KAFKA_ADVERTISED_LISTENERS: `EXTERNAL://${host}:${kafkaPort},INTERNAL://localhost:19092`,
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'EXTERNAL:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      KAFKA_NUM_PARTITIONS: '3',
    })
    .withWaitStrategy(tc.Wait.forLogMessage('Kafka Server started'))
    .withStartupTimeout(120_000);

  const registry = new tc.GenericContainer(REGISTRY_IMAGE)
    .withExposedPorts(8080)
    .withWaitStrategy(tc.Wait.forHttp('/apis/ccompat/v7/subjects', 8080).forStatusCode(200))
    .withStartupTimeout(120_000);

  const redis = new tc.GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    .withWaitStrategy(tc.Wait.forLogMessage('Ready to accept connections'))
    .withStartupTimeout(60_000);

  const results = await Promise.allSettled([kafka.start(), registry.start(), redis.start()]);
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(started.map((c: StartedTestContainer) => c.stop()));
  };
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await stopAll();
    throw new Error('a Docker engine answers, but starting the test containers failed', {
      cause: failed.reason,
    });
  }
  const [, reg, red] = started as [StartedTestContainer, StartedTestContainer, StartedTestContainer];
  return {
    endpoints: {
      kafkaBrokers: [`${host}:${kafkaPort}`],
      registryUrl: `http://${reg.getHost()}:${reg.getMappedPort(8080)}/apis/ccompat/v7`,
      redisUrl: `redis://${red.getHost()}:${red.getMappedPort(6379)}`,
      source: 'containers',
    },
    teardown: stopAll,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// No Docker: the project's own stack
// ---------------------------------------------------------------------------------------------

async function fromStack(): Promise<Found> {
  // Its progress lines go to our output; it exits once the services are ready (they run detached).
  await new Promise<void>((resolveUp, reject) => {
    const child = spawn('bash', [STACK_SCRIPT, 'up'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0
        ? resolveUp()
        : reject(new Error(`scripts/stack.sh up failed (${signal ?? `exit ${code}`}); see its output above`)),
    );
  });
  // `stack.sh env` is the one place that knows the ports (including FAIRFLAG_STACK_*_PORT overrides).
  const { stdout } = await promisify(execFile)('bash', [STACK_SCRIPT, 'env'], { cwd: ROOT });
  const vars = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^export (\w+)=(.*)$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) vars.set(m[1], m[2]);
  }
  const get = (name: string): string => {
    const value = vars.get(name);
    if (!value) throw new Error(`scripts/stack.sh env printed no ${name}`);
    return value;
  };
  return {
    endpoints: {
      kafkaBrokers: splitBrokers(get('FAIRFLAG_KAFKA_BROKERS')),
      registryUrl: get('FAIRFLAG_REGISTRY_URL'),
      redisUrl: get('FAIRFLAG_REDIS_URL'),
      source: 'stack',
    },
  };
}

function splitBrokers(value: string): string[] {
  return value
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
}
