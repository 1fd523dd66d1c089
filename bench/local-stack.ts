// What the benchmarks share about the local stack: its connection variables, and the config's
// topic keys each run points at topics of its own.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { topicNames } from '../config/schema.js';
import { loadConfig } from '../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../src/runtime/project.js';

export const stack = (...a: string[]) =>
  execFileSync('bash', [join(PROJECT_ROOT, 'scripts/stack.sh'), ...a], { encoding: 'utf8' });

/** `scripts/stack.sh env` as variables (FAIRFLAG_KAFKA_BROKERS and the like). */
export function stackEnv(): Record<string, string> {
  return Object.fromEntries(
    stack('env')
      .trim()
      .split('\n')
      .map((l) => l.replace(/^export /, '').split('=') as [string, string]),
  );
}

/** The config's topic keys (config.topics) a benchmark run renames to its own topics: all of them. */
export const TOPIC_KEYS = Object.keys(topicNames(loadConfig({ env: {} }).config.topics));
