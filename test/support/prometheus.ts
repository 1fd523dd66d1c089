// A real Prometheus server (the Debian package's binary) for tests: it scrapes the given targets
// every second and answers PromQL over its HTTP API.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Fails with the install command when a binary of the `prometheus` package is missing. */
export function requireBinary(name: 'prometheus' | 'promtool'): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0)
    throw new Error(`${name} is not installed: apt-get install -y prometheus (CI: .ci/run installs it)`);
  return found.stdout.trim();
}

export class PrometheusServer {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  /** Starts Prometheus scraping `job`'s targets (host:port) every second, with the rule files given. */
  static async start(job: string, targets: string[], ruleFiles: string[] = []): Promise<PrometheusServer> {
    const bin = requireBinary('prometheus');
    const dir = mkdtempSync(join(tmpdir(), 'fairflag-prometheus-'));
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      rule_files: ruleFiles,
      scrape_configs: [{ job_name: job, static_configs: [{ targets }] }],
    };
    writeFileSync(join(dir, 'prometheus.yml'), stringify(config));
    const port = await freePort();
    const child = spawn(
      bin,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`);
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await fetch(`${server.url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return server;
      const gone = await Promise.race([exited, new Promise((r) => setTimeout(() => r('waiting'), 200))]);
      if (gone !== 'waiting' || Date.now() > deadline) {
        await server.stop();
        throw new Error(`prometheus did not become ready (exit ${String(gone)}): ${server.output}`);
      }
    }
  }

  /** An instant PromQL query; a query Prometheus refuses throws with its error. */
  async query(expr: string): Promise<Sample[]> {
    const r = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as { status: string; error?: string; data?: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error ?? r.status}`);
    return body.data!.result;
  }

  /** GET an API path (e.g. /api/v1/rules), its data. */
  async api<T>(path: string): Promise<T> {
    const body = (await (await fetch(`${this.url}${path}`)).json()) as { status: string; data: T };
    if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`);
    return body.data;
  }

  /** Waits until `expr` returns at least one sample and `accept` agrees; returns the samples. */
  async until(expr: string, accept: (s: Sample[]) => boolean = (s) => s.length > 0, ms = 60_000) {
    const deadline = Date.now() + ms;
    let last: Sample[] = [];
    while (Date.now() < deadline) {
      last = await this.query(expr);
      if (accept(last)) return last;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`timed out waiting for ${expr}; last answer ${JSON.stringify(last)}`);
  }

  get log(): string {
    return this.output;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
