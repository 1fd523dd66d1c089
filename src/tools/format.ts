// Human-readable renderings of flags and decisions, for the demo, replay and explain.
import type { ReviewFlag } from '../domain/flags.js';
import { HISTORY_UNKNOWN, describePattern, parsePattern } from '../domain/mitigations.js';
import type { QueueDecision } from '../domain/scoring.js';
import type { DiffResult, FlagChange } from './diff.js';
import type { Explanation } from './explain.js';
import type { ReplayResult } from './replay.js';
import type { LabelCounts } from './diff.js';
import type { LabelReport, LabelTally } from './review-labels.js';
import type { ReviewReport, ReviewTally } from './review-report.js';
import type { ShadowReport } from './shadow-report.js';
import { sweepTable, type SweepResult } from './sweep.js';
import { getBorderCharacters, table } from 'table';

const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 0));

/** Aligned columns with no borders, the first row a header; every column but the first right-aligned. */
function columns(rows: (string | number)[][], indent = '  '): string[] {
  const right = Object.fromEntries(rows[0]!.slice(1).map((_, i) => [i + 1, { alignment: 'right' as const }]));
  return table(rows, {
    border: getBorderCharacters('void'),
    columnDefault: { paddingLeft: 0, paddingRight: 2 },
    columns: right,
    drawHorizontalLine: () => false,
  })
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => `${indent}${l.trimEnd()}`);
}

const pct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 100)}%`);

function labelRows(name: string, m: Map<string, LabelTally>): (string | number)[][] {
  return [
    [name, 'flags', 'confirmed', 'cleared', 'more info', 'not reviewed', 'precision'],
    ...[...m].map(([k, t]) => [
      k,
      t.flags,
      t.confirmed,
      t.cleared,
      t.needsMoreInfo,
      t.notReviewed,
      pct(t.precision),
    ]),
  ];
}

/** The labelled part of a backtest: precision per queue and signal, and accounts behind them. */
export function formatLabels(l: LabelReport): string[] {
  const samples = (t: LabelTally) =>
    (['confirmed', 'cleared', 'notReviewed'] as const).flatMap((k) =>
      t.samples[k].map(
        (x) =>
          `    ${k === 'notReviewed' ? 'not reviewed' : k} ${x.accountId} (${x.queue}, ${x.severity}, score ${num(x.score)}): ${x.signals.join(', ')}`,
      ),
    );
  return [
    `  review outcomes: ${l.outcomes} (${l.unmatched} about accounts this replay does not flag); precision = confirmed / (confirmed + cleared)`,
    ...columns(labelRows('queue', l.byQueue)),
    ...columns(labelRows('signal on the flag', l.bySignal)),
    '  accounts behind the numbers (a few of each):',
    ...samples(l.overall),
  ];
}

/** The width of the longest name: signal lines line up whatever their names' lengths. */
const widthOf = (names: string[]) => Math.max(0, ...names.map((n) => n.length));

export function formatFlag(f: ReviewFlag, indent = '  '): string {
  const w = widthOf(f.signals.map((s) => s.id));
  const lines = [
    `${indent}FLAG ${f.flagId} rev ${f.revision}  account ${f.accountId}`,
    `${indent}  action ${f.action}  queue ${f.reviewQueue}  severity ${f.severity}  score ${num(f.score)} (review at ${num(f.reviewThreshold)})`,
    `${indent}  signals:`,
    ...f.signals.map(
      (s) =>
        `${indent}    ${s.id.padEnd(w)} ${num(s.observed)} vs ${num(s.threshold)} (${s.window}); weight ${num(s.weight)} x strength ${num(s.strength)} -> ${num(s.contribution)}\n` +
        `${indent}      ${s.summary}\n${indent}      evidence: ${s.evidenceEventIds.join(', ')}`,
    ),
    `${indent}  mitigations:${f.mitigations.length ? '' : ' none'}`,
    ...f.mitigations.map((m) => `${indent}    ${m.id}: ${m.effect}`),
    ...f.notApplicableMitigations.map((m) => `${indent}    ${m.id}: not applicable: ${m.reason}`),
    ...(f.historyUnknown ? [`${indent}    ${HISTORY_UNKNOWN}`] : []),
    `${indent}  member notice [${f.notice.category}]: ${f.notice.text}`,
    `${indent}    how to resolve: ${f.notice.howToResolve}`,
    `${indent}  config ${f.configVersion}, ${f.processorVersion}`,
  ];
  return lines.join('\n');
}

export function formatDecision(d: QueueDecision, indent = '  '): string {
  const verdict = d.severity
    ? `REVIEW (${d.severity})`
    : d.clearedByReview
      ? 'no flag: a reviewer cleared this pattern and its cooldown has not ended'
      : d.corroborated
        ? `no flag: score under the review threshold`
        : `no flag: ${d.corroboration}`;
  const w = widthOf(d.signals.map((s) => s.observation.signalId));
  return [
    `${indent}queue ${d.queue}: score ${num(d.score)} vs review threshold ${num(d.threshold)} -> ${verdict}`,
    ...d.signals.map(
      (s) =>
        `${indent}  ${s.observation.signalId.padEnd(w)} ${num(s.observation.observed)} vs ${num(s.observation.threshold)} (${s.observation.window})${s.weak ? ' [weak]' : ''} -> ${num(s.contribution)}: ${s.observation.summary}`,
    ),
    ...d.mitigations.map((m) => `${indent}  mitigation ${m.id}: ${m.effect}`),
    ...d.notApplicable.map((m) => `${indent}  mitigation ${m.id} not applicable: ${m.reason}`),
    ...(d.historyUnknown ? [`${indent}  ${HISTORY_UNKNOWN}`] : []),
  ].join('\n');
}

const iso = (t: number) => new Date(t).toISOString();

export function formatExplanation(e: Explanation): string {
  if (!e.known) return `account ${e.accountId}: nothing remembered (no event within the retention windows)`;
  const c = e.context;
  const w = widthOf(e.signals.map((s) => s.id));
  const lines = [
    `account ${e.accountId}, as of ${iso(e.asOf)} (its latest event), from the state in Redis as of the last batch its owner wrote`,
    `  context: created ${c.createdAt !== undefined ? iso(c.createdAt) : 'unknown'}, identity ${c.identityVerified === undefined ? 'unknown' : c.identityVerified ? 'verified' : 'not verified'}, ${c.lifetimeCompletedContracts ?? '?'} completed contracts, ${c.lifetimePaidHours ?? '?'} paid hours`,
    `  mitigations:${e.mitigations.length ? '' : ' none'}`,
    ...(e.historyUnknown ? [`    ${HISTORY_UNKNOWN}`] : []),
    ...e.mitigations.map((m) => `    ${m.id}: ${m.effect} (dampens ${m.appliesTo.join(', ')})`),
    ...e.clearedPatterns.map(
      (p) => `    cleared review of ${describePattern(parsePattern(p.pattern))} until ${iso(p.until)}`,
    ),
    `  features (window: value):`,
    ...e.features.map(
      (f) =>
        `    ${f.feature} in ${f.window}: ${f.value}${f.sample?.length ? ` (${f.sample.join(', ')})` : ''}`,
    ),
    ...e.capsReached.map((x) => `    cap reached for ${x.what} at ${iso(x.at)}`),
    `  signals:`,
    ...e.signals.map((s) => {
      const measured =
        s.observed !== undefined ? ` ${num(s.observed)} vs ${num(s.threshold ?? 0)} (${s.window})` : '';
      return `    ${s.id.padEnd(w)} ${s.status.toUpperCase()}${measured}${s.weak ? ' [weak]' : ''}\n      ${s.summary}\n      basis: ${s.basis}${s.evidenceEventIds?.length ? `; evidence: ${s.evidenceEventIds.join(', ')}` : ''}`;
    }),
    `  score:`,
    ...(e.decisions.length
      ? e.decisions.map((d) => formatDecision(d, '    '))
      : ['    no signal remembered: score 0']),
    `  open flags:${e.openFlags.length ? '' : ' none'}`,
    ...e.openFlags.map(
      (f) =>
        `    ${f.flagId} rev ${f.revision} severity ${f.severity} score ${num(f.score)} since ${iso(f.createdAt)}: ${f.signals.map((s) => s.signalId).join(', ')}`,
    ),
  ];
  return lines.join('\n');
}

/** How many flagged accounts a replay's text summary names. */
const FLAGGED_SHOWN = 10;

export function formatReplay(r: ReplayResult, source: string): string {
  const byQueue = new Map<string, number>();
  for (const f of r.finalFlags.values())
    byQueue.set(
      `${f.reviewQueue} / ${f.severity}`,
      (byQueue.get(`${f.reviewQueue} / ${f.severity}`) ?? 0) + 1,
    );
  const signals = [...new Set([...r.signalFires.keys(), ...r.deciding.keys()])].sort();
  const accounts = [...new Set([...r.finalFlags.values()].map((f) => f.accountId))].sort();
  return [
    `replay of ${source} with config ${r.configVersion} (namespace ${r.namespace}${r.namespaceRemoved ? ', removed' : ', kept'})`,
    `  events read ${r.eventsRead}, accepted ${r.accepted}, rejected ${r.rejected.length}, late ${r.late}`,
    ...(r.rejected.length
      ? ['  rejected:', ...r.rejected.map((x) => `    ${x.where}: ${x.reason}: ${x.detail}`)]
      : []),
    `  flags: ${r.finalFlags.size} (${r.flags.length} flag message(s))`,
    ...[...byQueue].sort().map(([k, n]) => `    ${k}: ${n}`),
    ...(accounts.length
      ? [
          `  flagged accounts: ${accounts.slice(0, FLAGGED_SHOWN).join(', ')}${accounts.length > FLAGGED_SHOWN ? ` and ${accounts.length - FLAGGED_SHOWN} more (all with --json)` : ''}`,
        ]
      : []),
    ...columns([
      ['signal', 'fired', 'deciding'],
      ...signals.map((s) => [s, r.signalFires.get(s) ?? 0, r.deciding.get(s) ?? 0]),
    ]),
    ...(r.labels ? formatLabels(r.labels) : []),
  ].join('\n');
}

const side = (f: ReviewFlag | undefined) => (f ? `${f.severity} ${num(f.score)}` : 'none');

export function formatShadowReport(r: ShadowReport): string {
  const day = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  const change = (c: FlagChange, sign: string) =>
    `  ${sign} ${c.accountId} ${c.queue} ${side(c.before)} -> ${side(c.after)}: ${c.why.join('; ')}`;
  return [
    `live vs shadow from ${day(r.since)} to ${day(r.until)} UTC: ${r.liveFlags} live and ${r.shadowFlags} shadow flag message(s)`,
    `${r.added.length} the candidate would start reviewing, ${r.removed.length} stop, ${r.changed.length} review differently`,
    ...(r.removed.length
      ? ['would stop being reviewed (live -> shadow):', ...r.removed.map((c) => change(c, '-'))]
      : []),
    ...(r.added.length
      ? ['would start being reviewed (live -> shadow):', ...r.added.map((c) => change(c, '+'))]
      : []),
    ...(r.changed.length
      ? ['would be reviewed differently (live -> shadow):', ...r.changed.map((c) => change(c, '~'))]
      : []),
  ].join('\n');
}

export function formatDiff(d: DiffResult): string {
  const labelled = d.labels !== undefined;
  const change = (c: FlagChange, sign: string) =>
    `  ${sign} ${c.accountId} ${c.queue} ${side(c.before)} -> ${side(c.after)}${labelled ? ` [${c.label.toLowerCase().replace(/_/g, ' ')}]` : ''}: ${c.why.join('; ')}`;
  const counts = (what: string, c: LabelCounts | undefined) =>
    c && c.CONFIRMED + c.CLEARED + c.NEEDS_MORE_INFO + c.NOT_REVIEWED > 0
      ? [
          `  of those ${what}: ${c.CONFIRMED} confirmed, ${c.CLEARED} cleared, ${c.NEEDS_MORE_INFO} needing more info, ${c.NOT_REVIEWED} not reviewed`,
        ]
      : [];
  return [
    `base ${d.base.configVersion} vs candidate ${d.candidate.configVersion} over ${d.base.eventsRead} events (${d.base.rejected.length} rejected)`,
    `flags: ${d.base.finalFlags.size} -> ${d.candidate.finalFlags.size}; ${d.added.length} start review, ${d.removed.length} stop, ${d.changed.length} change`,
    ...(d.removed.length
      ? ['stop being reviewed (severity score before -> after):', ...d.removed.map((c) => change(c, '-'))]
      : []),
    ...counts('who stop', d.labels?.removed),
    ...(d.added.length
      ? ['start being reviewed (severity score before -> after):', ...d.added.map((c) => change(c, '+'))]
      : []),
    ...counts('who start', d.labels?.added),
    ...(d.changed.length
      ? ['reviewed differently (severity score before -> after):', ...d.changed.map((c) => change(c, '~'))]
      : []),
    ...counts('reviewed differently', d.labels?.changed),
    `signal fires:`,
    ...columns([
      ['signal', 'before', 'after', 'changed'],
      ...d.fires.map((f) => [f.signal, f.before, f.after, f.before !== f.after ? '*' : '']),
    ]),
  ].join('\n');
}

export function formatSweep(r: SweepResult, source: string): string {
  const { header, rows } = sweepTable(r, {
    valueHeader: 'value',
    value: (p) => `${p.value === r.current ? '* ' : ''}${p.value}`,
    precision: pct,
    lost: (accounts) => accounts.length,
  });
  const lost = r.points.filter((p) => p.labels?.confirmedLost.length);
  return [
    `sweep of ${r.setting} over ${source}: ${r.points.length} values, ${r.events} events (${r.rejected} rejected); * = today's value (${r.current})`,
    ...columns([header, ...rows]),
    ...(r.labelled
      ? [
          '  precision = confirmed / (confirmed + cleared); confirmed lost = confirmed accounts today reviews that this value would not',
          ...lost.map(
            (p) =>
              `  at ${p.value}: ${p.labels!.confirmedLost.slice(0, 5).join(', ')}${p.labels!.confirmedLost.length > 5 ? `, and ${p.labels!.confirmedLost.length - 5} more` : ''}`,
          ),
        ]
      : []),
  ].join('\n');
}

export function formatReviews(r: ReviewReport): string {
  const cells = (t: ReviewTally) => [
    t.reviewedFlags,
    t.confirmed,
    t.cleared,
    t.needsMoreInfo,
    pct(t.precision),
  ];
  const head = ['flags reviewed', 'confirmed', 'cleared', 'more info', 'precision'];
  const day = (t: number) => new Date(t).toISOString().slice(0, 16).replace('T', ' ');
  if (!r.records) return `no review decisions from ${day(r.since)} to ${day(r.until)} UTC`;
  return [
    `review decisions from ${day(r.since)} to ${day(r.until)} UTC: ${r.records}; precision = confirmed / (confirmed + cleared)`,
    `per ${r.period} and queue:`,
    ...columns([
      [r.period, 'queue', ...head],
      ...r.byPeriodQueue.map((x) => [x.period, x.queue, ...cells(x)]),
    ]),
    'per signal on the reviewed flags:',
    ...columns([['signal', ...head], ...r.bySignal.map((x) => [x.signal, ...cells(x)])]),
  ].join('\n');
}
