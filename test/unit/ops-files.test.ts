// The alert rules and the dashboard as files: promtool accepts the rules and their unit tests
// (ops/prometheus/alerts.test.yml) pass, every alert is tested both ways, and the dashboard's
// panels are well formed. Whether the metrics they query exist is
// test/integration/prometheus.test.ts's part (a running processor's /metrics).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireBinary } from '../support/prometheus.js';
import {
  ALERTS_FILE,
  ALERT_TESTS_FILE,
  alertRules,
  dashboard,
  dashboardExprs,
  metricNamesIn,
  panelsOf,
} from '../support/ops-files.js';

function promtool(...args: string[]) {
  return spawnSync(requireBinary('promtool'), args, { encoding: 'utf8' });
}

interface AlertTest {
  alertname: string;
  exp_alerts: unknown[];
}

describe('alert rules', () => {
  it('pass promtool check rules', () => {
    const r = promtool('check', 'rules', ALERTS_FILE);
    expect(r.stderr + r.stdout).toContain(`SUCCESS: ${alertRules().length} rules found`);
    expect(r.status).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    const r = promtool('test', 'rules', ALERT_TESTS_FILE);
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('are each tested firing and silent', () => {
    const doc = parse(readFileSync(ALERT_TESTS_FILE, 'utf8')) as {
      tests: { alert_rule_test: AlertTest[] }[];
    };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test);
    const names = alertRules().map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'FairflagConsumerLagGrowing',
        'FairflagNoEventsProcessed',
        'FairflagDeadLettersRising',
        'FairflagBatchRetries',
        'FairflagNotReady',
        'FairflagConfigReloadRejected',
        'FairflagFlagRateSpike',
        'FairflagFlagRateDrop',
      ]),
    );
    for (const name of names) {
      const mine = cases.filter((c) => c.alertname === name);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${name} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${name} stays silent in a test`,
      ).toBe(true);
    }
  });

  it('have a severity, a summary and a description, and query only the fairflag job', () => {
    for (const r of alertRules()) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.['severity']);
      expect(r.annotations?.['summary'], r.alert).toBeTruthy();
      expect(r.annotations?.['description'], r.alert).toBeTruthy();
      expect(r.expr, r.alert).toContain('job="fairflag"');
    }
  });
});

describe('the Grafana dashboard', () => {
  it('has unique panel ids, a query per panel and the Prometheus data source variable', () => {
    const d = dashboard();
    const panels = panelsOf(d);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((p) => p.type !== 'row'))
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
    expect(d.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    expect(d.uid).toBe('fairflag');
  });

  it('charts every batch stage, lag, dead letters, flags, retries and readiness', () => {
    const names = new Set(dashboardExprs().flatMap((e) => metricNamesIn(e.expr)));
    for (const n of [
      'fairflag_batch_stage_duration_seconds_bucket',
      'fairflag_consumer_lag_messages',
      'fairflag_dead_letters_total',
      'fairflag_flags_emitted_total',
      'fairflag_review_outcomes_total',
      'fairflag_batch_retries_total',
      'fairflag_readiness_check',
      'fairflag_config_info',
      'fairflag_build_info',
    ])
      expect(names, n).toContain(n);
  });
});
