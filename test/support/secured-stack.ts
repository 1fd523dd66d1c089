// A secured stack instance of its own (scripts/stack.sh with FAIRFLAG_STACK_SECURED=1 in
// .stack/secured, on free ports): Kafka on SASL_SSL only, the registry behind nginx with TLS and
// basic auth. Started and removed by the test file that uses it; the default stack is not touched.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/runtime/project.js';
import { stackCommand } from '../faults/support/stack-control.js';
import { freePorts } from './ports.js';

export const SECURED_STATE = join(PROJECT_ROOT, '.stack', 'secured');

export interface SecuredStack {
  /** FAIRFLAG_STACK_* for scripts/stack.sh. */
  stackEnv: Record<string, string>;
  /** What `stack.sh env` prints: every FAIRFLAG_* a client needs (brokers, TLS, SASL, registry, Redis). */
  client: Record<string, string>;
  kafkaBrokers: string[];
  registryUrl: string;
  redisUrl: string;
  /** The generated secrets, by name (kafka-fairflag, kafka-admin, registry-fairflag). */
  secret(name: string): string;
  stop(): Promise<void>;
}

export async function startSecuredStack(): Promise<SecuredStack> {
  const [kafka, controller, nginx, backend, redis] = await freePorts(5);
  const stackEnv: Record<string, string> = {
    FAIRFLAG_STACK_SECURED: '1',
    FAIRFLAG_STACK_STATE: SECURED_STATE,
    FAIRFLAG_STACK_KAFKA_PORT: String(kafka),
    FAIRFLAG_STACK_KAFKA_CONTROLLER_PORT: String(controller),
    FAIRFLAG_STACK_REGISTRY_PORT: String(nginx),
    FAIRFLAG_STACK_REGISTRY_BACKEND_PORT: String(backend),
    FAIRFLAG_STACK_REDIS_PORT: String(redis),
  };
  // leftovers of an aborted run (found by their pid files, whatever ports they used)
  await stackCommand(stackEnv, ['down'], { quiet: true });
  await stackCommand(stackEnv, ['up'], { quiet: true });
  const { stdout } = await promisify(execFile)('bash', ['scripts/stack.sh', 'env'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...stackEnv },
  });
  const client = Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => /^export (\w+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1]!, m[2]!]),
  );
  return {
    stackEnv,
    client,
    kafkaBrokers: client['FAIRFLAG_KAFKA_BROKERS']!.split(','),
    registryUrl: client['FAIRFLAG_REGISTRY_URL']!,
    redisUrl: client['FAIRFLAG_REDIS_URL']!,
    secret: (name) => readFileSync(join(SECURED_STATE, 'secrets', `${name}.password`), 'utf8').trim(),
    stop: async () => {
      await stackCommand(stackEnv, ['down'], { quiet: true });
    },
  };
}
