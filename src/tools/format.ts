// Human-readable renderings of flags and decisions, for the demo, replay and explain.
import type { ReviewFlag } from '../domain/flags.js';
import type { QueueDecision } from '../domain/scoring.js';

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
    `${indent}  member notice [${f.notice.category}]: ${f.notice.text}`,
    `${indent}    how to resolve: ${f.notice.howToResolve}`,
    `${indent}  config ${f.configVersion}, ${f.processorVersion}`,
  ];
  return lines.join('\n');
}

export function formatDecision(d: QueueDecision, indent = '  '): string {
  const verdict = d.severity
    ? `REVIEW (${d.severity})`
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
  ].join('\n');
}
