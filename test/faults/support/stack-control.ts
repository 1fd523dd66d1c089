// Starting and stopping the fault stack's services through scripts/stack.sh. No vitest imports:
// the global setup (which runs outside the test workers) uses this too.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../src/runtime/project.js';

/** Data, logs and pid files of the fault stack; the download cache stays in .stack/. */
export const FAULT_STATE = join(PROJECT_ROOT, '.stack', 'faults');

export interface FaultStack {
  /** FAIRFLAG_STACK_* for scripts/stack.sh: state directory, ports, durable. */
  env: Record<string, string>;
  kafkaBrokers: string[];
  registryUrl: string;
  redisUrl: string;
}

/** Runs scripts/stack.sh with the fault stack's environment; rejects with its output on failure. */
export function stackCommand(
  env: Record<string, string>,
  args: string[],
  opts: { quiet?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(PROJECT_ROOT, 'scripts/stack.sh'), ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!opts.quiet && out.trim())
        process.stdout.write(`${out.trimEnd().replace(/^/gm, `[fault stack ${args.join(' ')}] `)}\n`);
      if (code === 0) resolve(out);
      else reject(new Error(`scripts/stack.sh ${args.join(' ')} exited ${code}:\n${out}`));
    });
  });
}
