// What one setting does over a range of values: the same events replayed once per value (and once
// as configured), the flags by queue and severity for each, and with review outcomes the
// precision and the confirmed cases each value would no longer review.
import { loadConfig, type LoadedConfig, type LoadOptions } from '../runtime/config-loader.js';
import type { Logger } from '../runtime/logger.js';
import { replay, type ReplayItem, type ReplayResult } from './replay.js';

export class SweepSettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepSettingError';
  }
}

export interface SweepPoint {
  value: number;
  configVersion: string;
  flags: number;
  /** "queue / severity" -> flags. */
  byQueueSeverity: Record<string, number>;
  /** Only when the events came with review outcomes. */
  labels?: {
    confirmed: number;
    cleared: number;
    needsMoreInfo: number;
    notReviewed: number;
    precision: number | null;
    /** Accounts (account / queue) confirmed by reviewers that this value no longer reviews. */
    confirmedLost: string[];
    /** Accounts (account / queue) cleared by reviewers that this value no longer bothers. */
    clearedSpared: string[];
  };
}

export interface SweepResult {
  setting: string;
  /** The value the configuration has today. */
  current: number;
  events: number;
  rejected: number;
  labelled: boolean;
  points: SweepPoint[];
}

/** The number at a dotted path of the validated config, or why there is none. */
export function settingValue(config: unknown, setting: string): number {
  const path = setting.split('.');
  let node: unknown = config;
  for (const [i, k] of path.entries()) {
    if (typeof node !== 'object' || node === null || !(k in node)) {
      const here = typeof node === 'object' && node !== null ? Object.keys(node).sort() : [];
      throw new SweepSettingError(
        `no setting ${setting}: ${path.slice(0, i).join('.') || 'the config'} has no "${k}"` +
          (here.length ? ` (it has ${here.join(', ')})` : ''),
      );
    }
    node = (node as Record<string, unknown>)[k];
  }
  if (typeof node !== 'number')
    throw new SweepSettingError(
      `${setting} is ${typeof node === 'object' ? 'a section' : `a ${typeof node}`}, not a number: sweep tries numeric settings (a threshold, a weight, review.threshold)`,
    );
  return node;
}

const key = (f: { accountId: string; reviewQueue: string }) => `${f.accountId} / ${f.reviewQueue}`;

function pointOf(value: number, r: ReplayResult, base: ReplayResult): SweepPoint {
  const byQueueSeverity: Record<string, number> = {};
  for (const f of r.finalFlags.values()) {
    const k = `${f.reviewQueue} / ${f.severity}`;
    byQueueSeverity[k] = (byQueueSeverity[k] ?? 0) + 1;
  }
  const point: SweepPoint = {
    value,
    configVersion: r.configVersion,
    flags: r.finalFlags.size,
    byQueueSeverity,
  };
  if (r.labels) {
    const reviewed = new Set([...r.finalFlags.values()].map(key));
    const dropped = (label: string) =>
      base.labelled
        .filter((l) => l.label === label && !reviewed.has(key(l.flag)))
        .map((l) => key(l.flag))
        .sort();
    const o = r.labels.overall;
    point.labels = {
      confirmed: o.confirmed,
      cleared: o.cleared,
      needsMoreInfo: o.needsMoreInfo,
      notReviewed: o.notReviewed,
      precision: o.precision,
      confirmedLost: dropped('CONFIRMED'),
      clearedSpared: dropped('CLEARED'),
    };
  }
  return point;
}

export interface SweepOptions {
  items: ReplayItem[];
  /** How the configuration is loaded (file, environment); each value is set over it. */
  load: LoadOptions;
  setting: string;
  values: number[];
  onProgress?: (run: number, done: number) => void;
  /** Where each replay says what it does. */
  log?: Logger;
}

export async function sweepSetting(o: SweepOptions): Promise<SweepResult> {
  const base: LoadedConfig = loadConfig(o.load);
  const current = settingValue(base.config, o.setting);
  if (!o.values.length) throw new SweepSettingError('no values to try');
  // every value is validated before anything runs: a bad one fails at once, not an hour in
  const path = o.setting.split('.');
  const configs = o.values.map((value) => ({
    value,
    loaded: loadConfig({ ...o.load, settings: [...(o.load.settings ?? []), { path, value }] }),
  }));
  const asConfigured = await replay({
    loaded: base,
    items: o.items,
    onProgress: (n) => o.onProgress?.(0, n),
    log: o.log,
  });
  const points: SweepPoint[] = [];
  for (const [i, c] of configs.entries()) {
    const r = await replay({
      loaded: c.loaded,
      items: o.items,
      onProgress: (n) => o.onProgress?.(i + 1, n),
      log: o.log,
    });
    points.push(pointOf(c.value, r, asConfigured));
  }
  return {
    setting: o.setting,
    current,
    events: asConfigured.eventsRead,
    rejected: asConfigured.rejected.length,
    labelled: asConfigured.labels !== undefined,
    points,
  };
}

/**
 * The sweep as a table, a row per value tried: the text and HTML reports render the same columns,
 * each its own way for the value, the precision and the confirmed accounts lost.
 */
export function sweepTable(
  r: SweepResult,
  f: {
    valueHeader: string;
    value: (p: SweepPoint) => string;
    precision: (x: number | null) => string;
    lost: (accounts: string[]) => string | number;
  },
): { header: string[]; rows: (string | number)[][] } {
  const groups = [...new Set(r.points.flatMap((p) => Object.keys(p.byQueueSeverity)))].sort();
  const header = [
    f.valueHeader,
    'flags',
    ...groups,
    ...(r.labelled ? ['confirmed', 'cleared', 'not reviewed', 'precision', 'confirmed lost'] : []),
  ];
  const rows = r.points.map((p) => [
    f.value(p),
    p.flags,
    ...groups.map((g) => p.byQueueSeverity[g] ?? 0),
    ...(p.labels
      ? [
          p.labels.confirmed,
          p.labels.cleared,
          p.labels.notReviewed,
          f.precision(p.labels.precision),
          f.lost(p.labels.confirmedLost),
        ]
      : []),
  ]);
  return { header, rows };
}

/** `1:3:0.5` -> 1, 1.5, 2, 2.5, 3; `1.5,2,3` as given. */
export function parseSweepValues(spec: string): number[] {
  const range = /^\s*(-?[\d.]+)\s*:\s*(-?[\d.]+)\s*:\s*([\d.]+)\s*$/.exec(spec);
  if (range) {
    const [from, to, step] = range.slice(1).map(Number) as [number, number, number];
    if (!(step > 0) || !(to >= from))
      throw new SweepSettingError(`--values ${spec}: expected from:to:step with to >= from and step > 0`);
    const n = Math.floor((to - from) / step + 1e-9);
    if (n > 100) throw new SweepSettingError(`--values ${spec}: ${n + 1} values, at most 101`);
    // rounded to the step's decimals, so 0.1 steps do not print 0.30000000000000004
    const decimals = (String(step).split('.')[1] ?? '').length;
    return Array.from({ length: n + 1 }, (_, i) => Number((from + i * step).toFixed(decimals)));
  }
  const values = spec.split(',').map((v) => v.trim());
  const numbers = values.map(Number);
  const bad = values.filter((v, i) => v === '' || !Number.isFinite(numbers[i]));
  if (bad.length)
    throw new SweepSettingError(
      `--values ${spec}: not numbers: ${bad.map((b) => JSON.stringify(b)).join(', ')}`,
    );
  return numbers;
}
