// A real Prometheus server scrapes a running processor: what the processor counts is what PromQL
// over Prometheus's HTTP API answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCommit, PACKAGE_VERSION } from '../../src/runtime/project.js';
import { BATCH_STAGES } from '../../src/runtime/metrics.js';
import { isolatedConfig } from '../support/config.js';
import {
  ALERTS_FILE,
  alertRules,
  asPromQL,
  dashboardExprs,
  exportedNames,
  metricNamesIn,
} from '../support/ops-files.js';
import { Harness } from '../support/pipeline.js';
import { freePort } from '../support/ports.js';
import { PrometheusServer, type Sample } from '../support/prometheus.js';
import { takeoverAttempt } from '../support/stories.js';

const value = (s: Sample[]) => Number(s[0]?.value[1] ?? NaN);

let h: Harness;
let prom: PrometheusServer;
let port: number;

beforeAll(async () => {
  port = await freePort();
  h = await new Harness(
    isolatedConfig('prometheus', { FAIRFLAG_HTTP_PORT: String(port), FAIRFLAG_HTTP_HOST: '127.0.0.1' }),
    { http: true },
  ).start();
  prom = await PrometheusServer.start('fairflag', [`127.0.0.1:${port}`], [ALERTS_FILE]);
  // 15 login and payment events that flag a takeover, and one message that is not Avro
  await h.publish(takeoverAttempt('acct-prom', Date.now() - 3_600_000));
  await h.publishRaw(h.topics.login, [{ key: 'acct-prom', value: Buffer.from('not avro at all') }]);
  await h.settle();
});

afterAll(async () => {
  await prom?.stop();
  await h?.stop();
});

describe('Prometheus scraping a running processor', () => {
  it("answers PromQL with the processor's counts", async () => {
    await prom.until('up{job="fairflag"} == 1');
    const processed = await prom.until(
      'sum(fairflag_events_total{job="fairflag",outcome="processed"})',
      (s) => value(s) === 15,
    );
    expect(value(processed)).toBe(h.proc.counts.processed);
    const dead = await prom.until(
      'fairflag_dead_letters_total{reason="not_wire_format"}',
      (s) => value(s) === 1,
    );
    expect(dead[0]!.metric['instance']).toBe(`127.0.0.1:${port}`);
    expect(h.proc.counts.flagsEmitted).toBeGreaterThan(0);
    const flags = await prom.until('sum(fairflag_flags_emitted_total)', (s) => value(s) > 0);
    expect(value(flags)).toBe(h.proc.counts.flagsEmitted);
  });

  it('has the build and the config in effect as info metrics', async () => {
    const build = await prom.until('fairflag_build_info');
    expect(build[0]!.metric).toMatchObject({ version: PACKAGE_VERSION, commit: buildCommit() });
    const config = await prom.query('fairflag_config_info');
    expect(config.map((s) => s.metric['version'])).toEqual([h.proc.configVersion]);
  });

  it('times every batch stage, and a quantile can be computed from the buckets', async () => {
    for (const stage of BATCH_STAGES)
      await prom.until(`fairflag_batch_stage_duration_seconds_count{stage="${stage}"} > 0`);
    const p99 = await prom.query(
      'histogram_quantile(0.99, sum by (le) (fairflag_batch_stage_duration_seconds_bucket{stage="decode"}))',
    );
    expect(value(p99)).toBeGreaterThan(0);
    expect(value(p99)).toBeLessThan(10);
  });

  it('sees the readiness checks pass, and the standard process and Node.js metrics', async () => {
    const checks = await prom.until('fairflag_readiness_check == 1', (s) => s.length === 3);
    expect(checks.map((s) => s.metric['check']).sort()).toEqual(['kafka', 'redis', 'registry']);
    expect(value(await prom.until('process_resident_memory_bytes{job="fairflag"}'))).toBeGreaterThan(1e6);
    expect(await prom.until('nodejs_eventloop_lag_max_seconds{job="fairflag"}')).toHaveLength(1);
  });

  it('loads the alert rules and evaluates every one without error', async () => {
    type Rules = { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    const names = alertRules().map((r) => r.alert);
    const evaluated = async () => (await prom.api<Rules>('/api/v1/rules')).groups.flatMap((g) => g.rules);
    await until(async () => (await evaluated()).every((r) => r.health === 'ok'));
    const rules = await evaluated();
    expect(rules.map((r) => r.name).sort()).toEqual([...names].sort());
    expect(rules.filter((r) => r.lastError)).toEqual([]);
    // a healthy processor that just processed its events: nothing is firing
    const firing = await prom.query('ALERTS{alertstate="firing"}');
    expect(firing.map((s) => s.metric['alertname'])).toEqual([]);
  });

  it("queries, in the dashboard and the alerts, only metrics the processor's /metrics exports", async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const exported = exportedNames(text);
    const queries = [
      ...dashboardExprs(),
      ...alertRules().map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ];
    const used = new Set<string>();
    for (const { where, expr } of queries) {
      // Prometheus parses and runs each one (a typo in PromQL is an error here)
      await expect(prom.query(asPromQL(expr)), where).resolves.toBeDefined();
      for (const name of metricNamesIn(expr)) {
        used.add(name);
        expect(exported.has(name), `${where}: ${name} is not on /metrics`).toBe(true);
      }
    }
    expect(used.size).toBeGreaterThan(20);
  });
});

async function until(check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 500));
  }
}
