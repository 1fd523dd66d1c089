// `fairflag run` as its own process (as operators run it), for the faults that need a real
// process: SIGKILL, exit codes, start-up against unusable services, config reload.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../../src/runtime/project.js';
import { until } from './driver.js';
import { freePort } from '../../support/ports.js';

export const CLI = [process.execPath, '--import', 'tsx', join(PROJECT_ROOT, 'src/cli.ts')] as const;

/** The environment of a child: ours without any FAIRFLAG_* of the caller's shell, plus `env`. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FAIRFLAG')));
  return { ...base, FAIRFLAG_LOG_LEVEL: 'info', ...env };
}

export class RunningCli {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly child: ChildProcess,
    readonly port: number | undefined,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async get(path: string): Promise<Response | undefined> {
    if (this.port === undefined) return undefined;
    return fetch(`http://127.0.0.1:${this.port}${path}`, { signal: AbortSignal.timeout(3000) }).catch(
      () => undefined,
    );
  }

  async ready(): Promise<boolean> {
    return (await this.get('/readyz'))?.status === 200;
  }

  async waitReady(timeoutMs = 120_000): Promise<void> {
    try {
      await until(
        'the child processor to be ready',
        async () => {
          if (!this.running) throw new Error(`fairflag run exited early:\n${this.output.slice(-3000)}`);
          return this.ready();
        },
        timeoutMs,
        250,
      );
    } catch (err) {
      // what the child said and which check it fails: a bare timeout tells nothing
      const readyz = await (await this.get('/readyz'))?.text();
      throw new Error(
        `${(err as Error).message}\n/readyz: ${readyz ?? 'no answer'}\nlast output:\n${this.output.slice(-3000)}`,
      );
    }
  }

  /** A counter from /metrics, summed over its labels that match `filter`. */
  async metric(name: string, filter = ''): Promise<number> {
    const text = (await (await this.get('/metrics'))?.text()) ?? '';
    let sum = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name}{`) && line.includes(filter))
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }
}

/** Starts `fairflag run [args]` with the given FAIRFLAG_* environment and an HTTP port of its own. */
export async function startCli(env: Record<string, string>, args: string[] = []): Promise<RunningCli> {
  const port = await freePort();
  const child = spawn(CLI[0], [...CLI.slice(1), 'run', ...args], {
    cwd: PROJECT_ROOT,
    env: childEnv({ ...env, FAIRFLAG_HTTP_PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new RunningCli(child, port);
}

/** Runs the CLI to completion (for commands that must exit), with a deadline. */
export async function runCli(
  env: Record<string, string>,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(CLI[0], [...CLI.slice(1), ...args], {
    cwd: PROJECT_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const c = new RunningCli(child, undefined);
  const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
  const { code } = await c.exited;
  clearTimeout(timer);
  return { code, output: c.output };
}
