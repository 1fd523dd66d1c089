// vitest globalSetup for the faults project: its OWN stack instance (scripts/stack.sh with
// FAIRFLAG_STACK_STATE=.stack/faults, free ports, durable Redis and registry), because these tests
// stop and restart Redis, Kafka and the registry. The default instance (.stack/, the integration
// tests' and a developer's) is never touched. Started here, stopped and wiped in teardown.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { FAULT_STATE, stackCommand, type FaultStack } from './stack-control.js';
import { freePorts } from '../../support/ports.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  mkdirSync(FAULT_STATE, { recursive: true });
  // One fault run per checkout at a time: a second one would stop the first one's services.
  const owner = join(FAULT_STATE, 'owner.pid');
  if (existsSync(owner)) {
    const pid = Number(readFileSync(owner, 'utf8'));
    if (pid && pid !== process.pid && alive(pid)) {
      throw new Error(`another fault-test run (pid ${pid}) is using ${FAULT_STATE}; wait for it to finish`);
    }
  }
  writeFileSync(owner, String(process.pid));

  const [kafka, controller, registry, redis] = await freePorts(4);
  const env: Record<string, string> = {
    FAIRFLAG_STACK_STATE: FAULT_STATE,
    FAIRFLAG_STACK_DURABLE: '1',
    FAIRFLAG_STACK_KAFKA_PORT: String(kafka),
    FAIRFLAG_STACK_KAFKA_CONTROLLER_PORT: String(controller),
    FAIRFLAG_STACK_REGISTRY_PORT: String(registry),
    FAIRFLAG_STACK_REDIS_PORT: String(redis),
  };
  // Leftovers of an aborted run (found by their pid files, whatever ports they used).
  await stackCommand(env, ['down'], { quiet: true });
  const t0 = Date.now();
  await stackCommand(env, ['up']);
  const { stdout } = await promisify(execFile)('bash', ['scripts/stack.sh', 'env'], {
    env: { ...process.env, ...env },
  });
  const vars = Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => /^export (\w+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1], m[2]]),
  ) as Record<string, string>;
  const stack: FaultStack = {
    env,
    kafkaBrokers: vars['FAIRFLAG_KAFKA_BROKERS']!.split(','),
    registryUrl: vars['FAIRFLAG_REGISTRY_URL']!,
    redisUrl: vars['FAIRFLAG_REDIS_URL']!,
  };
  project.provide('faultStack', stack);
  console.log(
    `[fault stack] ${FAULT_STATE} up in ${((Date.now() - t0) / 1000).toFixed(1)} s: kafka ${stack.kafkaBrokers.join(',')}, ` +
      `registry ${stack.registryUrl}, redis ${stack.redisUrl}`,
  );

  return async () => {
    await stackCommand(env, ['down'], { quiet: true }).catch((err: Error) =>
      console.error(`[fault stack] down failed: ${err.message}`),
    );
    rmSync(owner, { force: true });
  };
}
