// The review flag: one open flag per account and queue, with a deterministic id, re-emitted only
// when its signal set grows or its severity rises.
import { createHash } from 'node:crypto';
import type { Config } from '../../config/schema.js';
import type { FlagState } from '../features/model.js';
import type { QueueDecision } from './scoring.js';

/** The only action. The Avro enum has this one symbol; there is no type for any other. */
export const REVIEW = 'REVIEW' as const;

export interface ReviewFlag {
  flagId: string;
  revision: number;
  accountId: string;
  reviewQueue: string;
  action: typeof REVIEW;
  severity: string;
  score: number;
  reviewThreshold: number;
  createdAt: number;
  updatedAt: number;
  triggeringEventId: string;
  signals: {
    id: string;
    family: string;
    observed: number;
    threshold: number;
    window: string;
    weight: number;
    strength: number;
    contribution: number;
    summary: string;
    evidenceEventIds: string[];
    observedAt: number;
  }[];
  mitigations: { id: string; factor: number; effect: string }[];
  /** What the account has that does not speak to this queue's concern, and why. */
  notApplicableMitigations: { id: string; reason: string }[];
  /** fairflag has seen no creation event for the account: its history is unknown, not absent. */
  historyUnknown: boolean;
  notice: { category: string; text: string; howToResolve: string };
  configVersion: string;
  processorVersion: string;
}

/** Same account, queue and generation (flags closed before) give the same id, on every replay. */
export function flagIdFor(accountId: string, queue: string, generation: number): string {
  const h = createHash('sha256').update(`${accountId}\n${queue}\n${generation}`).digest('hex');
  return `ff-${h.slice(0, 32)}`;
}

export interface FlagUpdate {
  state: FlagState;
  flag: ReviewFlag;
}

/**
 * Decides whether a corroborated decision opens a flag, updates the open one, or changes nothing.
 * `open` is the queue's open flag; the decision was scored over its signals too.
 */
export function updateFlag(args: {
  accountId: string;
  decision: QueueDecision;
  open: FlagState | undefined;
  generation: number;
  at: number;
  triggeringEventId: string;
  cfg: Pick<Config, 'review' | 'queues'>;
  configVersion: string;
  processorVersion: string;
}): FlagUpdate | undefined {
  const { decision: d, open, cfg } = args;
  if (!d.severity) return undefined;
  const rank = (s: string) => cfg.review.severities.findIndex((b) => b.name === s);
  const ids = d.signals.map((s) => s.observation.signalId);
  if (open) {
    const known = new Set(open.signals.map((s) => s.signalId));
    const grows = ids.some((id) => !known.has(id));
    const rises = rank(d.severity) > rank(open.severity);
    if (!grows && !rises) return undefined;
  }
  const state: FlagState = {
    flagId: open?.flagId ?? flagIdFor(args.accountId, d.queue, args.generation),
    revision: (open?.revision ?? 0) + 1,
    severity: open && rank(open.severity) > rank(d.severity) ? open.severity : d.severity,
    score: d.score,
    createdAt: open?.createdAt ?? args.at,
    updatedAt: args.at,
    signals: d.signals.map((s) => s.observation),
  };
  const notice = cfg.queues[d.queue]?.notice ?? {
    category: d.queue,
    text: 'Our Trust & Safety team is reviewing recent activity on your account.',
    howToResolve: 'Contact support if you have questions.',
  };
  const flag: ReviewFlag = {
    flagId: state.flagId,
    revision: state.revision,
    accountId: args.accountId,
    reviewQueue: d.queue,
    action: REVIEW,
    severity: state.severity,
    score: d.score,
    reviewThreshold: d.threshold,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    triggeringEventId: args.triggeringEventId,
    signals: d.signals.map((s) => ({
      id: s.observation.signalId,
      family: s.observation.family,
      observed: s.observation.observed,
      threshold: s.observation.threshold,
      window: s.observation.window,
      weight: s.weight,
      strength: s.strength,
      contribution: s.contribution,
      summary: s.observation.summary,
      evidenceEventIds: s.observation.evidenceEventIds,
      observedAt: s.observation.observedAt,
    })),
    mitigations: d.mitigations.map((m) => ({ id: m.id, factor: m.factor, effect: m.effect })),
    notApplicableMitigations: d.notApplicable.map((m) => ({ id: m.id, reason: m.reason })),
    historyUnknown: d.historyUnknown ?? false,
    notice: { ...notice },
    configVersion: args.configVersion,
    processorVersion: args.processorVersion,
  };
  return { state, flag };
}
