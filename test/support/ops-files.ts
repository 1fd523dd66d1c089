// The operations files (ops/prometheus/alerts.yml, ops/grafana/fairflag.json) as tests read them:
// their PromQL expressions and the metric names those query.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../src/runtime/project.js';

export const ALERTS_FILE = join(PROJECT_ROOT, 'ops/prometheus/alerts.yml');
export const ALERT_TESTS_FILE = join(PROJECT_ROOT, 'ops/prometheus/alerts.test.yml');
export const DASHBOARD_FILE = join(PROJECT_ROOT, 'ops/grafana/fairflag.json');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel {
  type: string;
  title: string;
  id: number;
  targets?: { expr: string }[];
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: unknown }[] };
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, rows' nested panels included. */
export function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** The dashboard's queries (panels and variables), with their panel's title. */
export function dashboardExprs(d = dashboard()): { where: string; expr: string }[] {
  const out = panelsOf(d).flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
  for (const v of d.templating.list) {
    const q = v.query as { query?: string } | string;
    const expr = typeof q === 'string' ? q : q.query;
    if (expr?.startsWith('label_values(')) out.push({ where: `variable ${v.name}`, expr });
  }
  return out;
}

/**
 * The same expression as Prometheus would get it from Grafana: its variables given values, and a
 * variable query (label_values) reduced to its selector.
 */
export function asPromQL(expr: string): string {
  const lv = /^label_values\((.*),\s*\w+\)$/.exec(expr);
  const e = lv ? lv[1]! : expr;
  return e.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*');
}

/** The fairflag, process and Node.js metric names an expression queries (a label never starts so). */
export function metricNamesIn(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:fairflag|process|nodejs)_[a-z0-9_]+/g) ?? [])];
}

/**
 * Metric families in an exposition text (# TYPE lines), with the series names each one has: a
 * histogram's _bucket, _sum and _count.
 */
export function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name!);
    if (type === 'histogram' || type === 'summary')
      for (const s of ['_bucket', '_sum', '_count']) names.add(name! + s);
  }
  return names;
}
