// Human-readable renderings of flags and decisions, for the demo, replay and explain.
import type { ReviewFlag } from '../domain/flags.js';
import { HISTORY_UNKNOWN, describePattern, parsePattern } from '../domain/mitigations.js';
import type { QueueDecision } from '../domain/scoring.js';
import type { DiffResult, FlagChange } from './diff.js';
import type { Explanation } from './explain.js';
import type { ReplayResult } from './replay.js';

const num = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 0));

export function formatFlag(f: ReviewFlag, indent = '  '): string {
  const lines = [
    `${indent}FLAG ${f.flagId} rev ${f.revision}  account ${f.accountId}`,
    `${indent}  action ${f.action}  queue ${f.reviewQueue}  severity ${f.severity}  score ${num(f.score)} (review at ${num(f.reviewThreshold)})`,
    `${indent}  signals:`,
    ...f.signals.map(
      (s) =>
        `${indent}    ${s.id.padEnd(34)} ${num(s.observed)} vs ${num(s.threshold)} (${s.window}); weight ${num(s.weight)} x strength ${num(s.strength)} -> ${num(s.contribution)}\n` +
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
  return [
    `${indent}queue ${d.queue}: score ${num(d.score)} vs review threshold ${num(d.threshold)} -> ${verdict}`,
    ...d.signals.map(
      (s) =>
        `${indent}  ${s.observation.signalId.padEnd(34)} ${num(s.observation.observed)} vs ${num(s.observation.threshold)} (${s.observation.window})${s.weak ? ' [weak]' : ''} -> ${num(s.contribution)}: ${s.observation.summary}`,
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
      return `    ${s.id.padEnd(34)} ${s.status.toUpperCase()}${measured}${s.weak ? ' [weak]' : ''}\n      ${s.summary}\n      basis: ${s.basis}${s.evidenceEventIds?.length ? `; evidence: ${s.evidenceEventIds.join(', ')}` : ''}`;
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

export function formatReplay(r: ReplayResult, source: string): string {
  const byQueue = new Map<string, number>();
  for (const f of r.finalFlags.values())
    byQueue.set(
      `${f.reviewQueue} / ${f.severity}`,
      (byQueue.get(`${f.reviewQueue} / ${f.severity}`) ?? 0) + 1,
    );
  const signals = [...new Set([...r.signalFires.keys(), ...r.deciding.keys()])].sort();
  return [
    `replay of ${source} with config ${r.configVersion} (namespace ${r.namespace}${r.namespaceRemoved ? ', removed' : ', kept'})`,
    `  events read ${r.eventsRead}, accepted ${r.accepted}, rejected ${r.rejected.length}, late ${r.late}`,
    ...(r.rejected.length
      ? ['  rejected:', ...r.rejected.map((x) => `    ${x.where}: ${x.reason}: ${x.detail}`)]
      : []),
    `  flags: ${r.finalFlags.size} (${r.flags.length} flag message(s))`,
    ...[...byQueue].sort().map(([k, n]) => `    ${k}: ${n}`),
    `  ${'signal'.padEnd(36)} ${'fired'.padStart(7)} ${'deciding'.padStart(9)}`,
    ...signals.map(
      (s) =>
        `  ${s.padEnd(36)} ${String(r.signalFires.get(s) ?? 0).padStart(7)} ${String(r.deciding.get(s) ?? 0).padStart(9)}`,
    ),
  ].join('\n');
}

export function formatDiff(d: DiffResult): string {
  const change = (c: FlagChange, sign: string) => {
    const f = c.after ?? c.before!;
    return `  ${sign} ${c.accountId} ${c.queue}${c.before && c.after ? ` ${c.before.severity} -> ${c.after.severity}` : ` ${f.severity}`}: ${c.why.join('; ')}`;
  };
  return [
    `base ${d.base.configVersion} vs candidate ${d.candidate.configVersion} over ${d.base.eventsRead} events (${d.base.rejected.length} rejected)`,
    `flags: ${d.base.finalFlags.size} -> ${d.candidate.finalFlags.size}; ${d.added.length} start review, ${d.removed.length} stop, ${d.changed.length} change`,
    ...(d.removed.length ? ['stop being reviewed:', ...d.removed.map((c) => change(c, '-'))] : []),
    ...(d.added.length ? ['start being reviewed:', ...d.added.map((c) => change(c, '+'))] : []),
    ...(d.changed.length ? ['reviewed differently:', ...d.changed.map((c) => change(c, '~'))] : []),
    `signal fires (before -> after):`,
    ...d.fires.map(
      (f) =>
        `  ${f.signal.padEnd(36)} ${String(f.before).padStart(7)} -> ${String(f.after).padEnd(7)}${f.before !== f.after ? ' *' : ''}`,
    ),
  ].join('\n');
}
