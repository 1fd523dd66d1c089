// The metrics' names and label sets (src/runtime/metrics.ts): Prometheus conventions, build and
// config info, and retry causes from a fixed set whatever the error.
import { execFileSync } from 'node:child_process';
import { ReplyError } from 'ioredis';
import { KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { StateStoreError } from '../../src/features/state-backend.js';
import { RegistryUnavailableError } from '../../src/kafka/codec.js';
import { judge } from '../../src/kafka/failure.js';
import {
  BATCH_STAGES,
  RETRY_CAUSES,
  createMetrics,
  retryCause,
  setConfigInfo,
} from '../../src/runtime/metrics.js';
import { PACKAGE_VERSION, PROJECT_ROOT, buildCommit } from '../../src/runtime/project.js';

describe('metrics', () => {
  it('exports the standard process and Node.js metrics without a prefix', async () => {
    const text = await createMetrics().registry.metrics();
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_max_seconds',
      'nodejs_heap_size_used_bytes',
    ])
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    expect(text).not.toMatch(/^fairflag_(process|nodejs)_/m);
  });

  it("names fairflag's metrics with their unit: counters _total, histograms _seconds", async () => {
    const all = await createMetrics().registry.getMetricsAsJSON();
    const own = all.filter((m) => m.name.startsWith('fairflag_'));
    expect(own.length).toBeGreaterThan(15);
    for (const m of own) {
      if (String(m.type) === 'counter') expect(m.name).toMatch(/_total$/);
      else if (String(m.type) === 'histogram') expect(m.name).toMatch(/_seconds$/);
      else
        expect(m.name, m.name).toMatch(
          /_(seconds|bytes|messages|info|accounts|check)$|_in_memory$|_successful$/,
        );
    }
  });

  it('labels only by names whose values come from fixed sets (config, code), never from input or errors', () => {
    // topic: the configured topics; signal, queue, severity: the policy's; partition: the
    // partition count; version: one series (the build, the config in effect)
    const bounded = new Set([
      ...['topic', 'partition', 'outcome', 'reason', 'signal', 'queue', 'severity'],
      ...['step', 'cause', 'result', 'stored', 'stage', 'check', 'version', 'commit'],
    ]);
    const metrics = createMetrics().registry.getMetricsAsArray() as unknown as {
      name: string;
      labelNames: string[];
    }[];
    const own = metrics.filter((m) => m.name.startsWith('fairflag_'));
    for (const m of own)
      for (const label of m.labelNames) expect(bounded, `${m.name}{${label}}`).toContain(label);
    expect(own.flatMap((m) => m.labelNames).length).toBeGreaterThan(20);
  });

  it('says which version and commit run, and which config is in effect', async () => {
    const m = createMetrics();
    const info = (await m.registry.getSingleMetric('fairflag_build_info')!.get()).values;
    expect(info).toEqual([{ labels: { version: PACKAGE_VERSION, commit: buildCommit() }, value: 1 }]);
    setConfigInfo(m, 'cfg-aaaaaaaaaaaa');
    setConfigInfo(m, 'cfg-bbbbbbbbbbbb');
    const config = (await m.registry.getSingleMetric('fairflag_config_info')!.get()).values;
    // only the config in effect: a reload replaces the series
    expect(config).toEqual([{ labels: { version: 'cfg-bbbbbbbbbbbb' }, value: 1 }]);
  });

  it('takes the commit from FAIRFLAG_COMMIT, else from git, else says unknown', () => {
    expect(buildCommit({ FAIRFLAG_COMMIT: ' 0123abc ' })).toBe('0123abc');
    let head = 'unknown';
    try {
      head = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      // not a git checkout (an unpacked archive)
    }
    expect(buildCommit({})).toBe(head);
  });

  it('has a latency series for every batch stage from the start', async () => {
    const text = await createMetrics().registry.getSingleMetricAsString(
      'fairflag_batch_stage_duration_seconds',
    );
    for (const stage of BATCH_STAGES)
      expect(text).toContain(`fairflag_batch_stage_duration_seconds_count{stage="${stage}"} 0`);
    expect([...BATCH_STAGES]).toEqual(['decode', 'features', 'signals', 'produce', 'persist', 'commit']);
  });

  it('maps retry causes to the service that is out, or unexpected: never an error text', () => {
    const wrongType = new StateStoreError('reading account state', {
      cause: new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
    });
    const cases: [Error, string][] = [
      [new RegistryUnavailableError('registry down'), 'registry'],
      [new StateStoreError('reading account state', { cause: new Error('Connection is closed.') }), 'redis'],
      [
        new KafkaJSNumberOfRetriesExceeded(new Error('broker gone'), { retryCount: 5, retryTime: 10 }),
        'kafka',
      ],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'network'],
      [wrongType, 'unexpected'],
      [new TypeError("Cannot read properties of undefined (reading 'x')"), 'unexpected'],
    ];
    for (const [err, cause] of cases) expect(retryCause(judge(err)), err.message).toBe(cause);
    for (const [err] of cases) expect(RETRY_CAUSES).toContain(retryCause(judge(err)));
  });

  it('counts retries by step and cause, every pair present at 0 before the first', async () => {
    const m = createMetrics();
    m.retries.inc({ step: 'persist', cause: 'redis' });
    const values = (await m.registry.getSingleMetric('fairflag_batch_retries_total')!.get()).values;
    expect(values).toHaveLength(15);
    expect(values.filter((v) => v.value > 0)).toEqual([
      { labels: { step: 'persist', cause: 'redis' }, value: 1 },
    ]);
  });
});
