// Scoring and corroboration: a pure function from remembered observations and mitigations to a
// decision per review queue. The only outcome it can produce is "review" or nothing.
import type { Config } from '../../config/schema.js';
import type { StoredObservation } from '../features/model.js';
import {
  clearedReview,
  mitigationsFor,
  type AccountMitigation,
  type AppliedMitigation,
  type NotApplicableMitigation,
} from './mitigations.js';
import type { AnySignal } from './signal.js';

export interface ScoredSignal {
  observation: StoredObservation;
  weight: number;
  strength: number;
  /** After mitigations; the contributions add up to the score. */
  contribution: number;
  strong: boolean;
  weak: boolean;
  sufficientAlone: boolean;
}

export interface QueueDecision {
  queue: string;
  signals: ScoredSignal[];
  families: string[];
  mitigations: AppliedMitigation[];
  /** What the account has that does not speak to this queue's concern, and why. */
  notApplicable: NotApplicableMitigation[];
  score: number;
  threshold: number;
  /** Why the signals do or do not corroborate each other. */
  corroboration: string;
  corroborated: boolean;
  /** No account creation event seen: the account's history is unknown, not absent. */
  historyUnknown?: boolean;
  /** The same pattern was cleared by a reviewer and its cooldown has not ended: no review. */
  clearedByReview?: boolean;
  /** Set when the account goes to review: the severity band reached. */
  severity?: string;
}

export interface SignalSettings {
  definition: AnySignal;
  weight: number;
  queue: string;
  strong: boolean;
  sufficientAlone: boolean;
  maxStrength: number;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export function strengthOf(
  o: Pick<StoredObservation, 'observed' | 'threshold'>,
  maxStrength: number,
): number {
  const ratio = o.threshold > 0 ? o.observed / o.threshold : maxStrength;
  // an infinite observation over an infinite threshold says nothing about how far past it: the
  // floor, not NaN (which Math.max passes on and would spread into the score)
  if (Number.isNaN(ratio)) return 1;
  // round first, then clamp: rounding after the cap could lift it above a maxStrength like 1.9945
  return Math.min(maxStrength, Math.max(1, round(ratio)));
}

/**
 * Groups observations by review queue and scores each group. Corroboration (principle 3): at
 * least one signal that is not weak, and either two families or a signal sufficient alone.
 */
export function decide(
  observations: StoredObservation[],
  settings: ReadonlyMap<string, SignalSettings>,
  accountMitigations: readonly AccountMitigation[],
  clearedPatterns: ReadonlyMap<string, number>,
  asOf: number,
  cfg: Pick<Config, 'review' | 'mitigations'>,
): QueueDecision[] {
  const byQueue = new Map<string, { o: StoredObservation; s: SignalSettings }[]>();
  for (const o of observations) {
    const s = settings.get(o.signalId);
    if (!s) continue; // a signal since disabled or removed from config no longer counts
    byQueue.set(s.queue, [...(byQueue.get(s.queue) ?? []), { o, s }]);
  }
  const decisions: QueueDecision[] = [];
  for (const [queue, items] of [...byQueue].sort(([a], [b]) => a.localeCompare(b))) {
    const families = [...new Set(items.map((i) => i.o.family))].sort();
    const { applied: mitigations, notApplicable } = mitigationsFor(queue, accountMitigations);
    const cleared = clearedReview(
      queue,
      items.map(({ o, s }) => ({ signalId: o.signalId, family: o.family, weak: s.definition.weak })),
      clearedPatterns,
      asOf,
      cfg.mitigations,
    );
    if (cleared) mitigations.push(cleared.mitigation);
    const product = mitigations.reduce((p, m) => p * m.factor, 1);
    const strongFactor = Math.max(product, cfg.review.strongSignalFloor);
    const signals: ScoredSignal[] = items
      .map(({ o, s }) => {
        const strength = strengthOf(o, s.maxStrength);
        return {
          observation: o,
          weight: s.weight,
          strength,
          contribution: round(s.weight * strength * (s.strong ? strongFactor : product)),
          strong: s.strong,
          weak: s.definition.weak,
          sufficientAlone: s.sufficientAlone,
        };
      })
      .sort(
        (a, b) =>
          b.contribution - a.contribution || a.observation.signalId.localeCompare(b.observation.signalId),
      );
    const { corroborated, corroboration } = corroborate(signals, cfg.review.minFamilies);
    const score = round(signals.reduce((t, s) => t + s.contribution, 0));
    const decision: QueueDecision = {
      queue,
      signals,
      families,
      mitigations,
      notApplicable,
      score,
      threshold: cfg.review.threshold,
      corroboration,
      corroborated,
    };
    if (cleared?.covered) decision.clearedByReview = true;
    // a reviewer's decision is not a discount: the same pattern is not raised again, whatever it scores
    const severity = cleared?.covered ? undefined : severityOf(corroborated, score, cfg.review);
    if (severity) decision.severity = severity;
    decisions.push(decision);
  }
  return decisions;
}

/** Principle 3: at least one signal that is not weak, and two families or one sufficient alone. */
export function corroborate(
  signals: ScoredSignal[],
  minFamilies: number,
): { corroborated: boolean; corroboration: string } {
  // weak signals never count towards corroboration, not even as the second family
  const strongOnes = signals.filter((s) => !s.weak);
  const families = [...new Set(strongOnes.map((s) => s.observation.family))].sort();

  const alone = strongOnes.find((s) => s.sufficientAlone);
  if (!strongOnes.length)
    return { corroborated: false, corroboration: 'only weak signals: never enough on their own' };
  if (families.length >= minFamilies) {
    return { corroborated: true, corroboration: `${families.length} families (${families.join(', ')})` };
  }
  if (alone)
    return { corroborated: true, corroboration: `${alone.observation.signalId} is sufficient alone` };
  return {
    corroborated: false,
    corroboration: `${families.length} famil${families.length === 1 ? 'y' : 'ies'} (${families.join(', ')}); ${minFamilies} needed or a signal sufficient alone`,
  };
}

function severityOf(corroborated: boolean, score: number, review: Config['review']): string | undefined {
  if (!corroborated || score < review.threshold) return undefined;
  return [...review.severities].reverse().find((b) => score >= b.minScore)?.name;
}

/**
 * The signals a review depended on: without any one of them (its contribution gone, corroboration
 * judged again) the account would not have gone to review at that severity.
 */
export function decidingSignals(d: QueueDecision, review: Config['review']): string[] {
  if (!d.severity) return [];
  const rank = (s: string | undefined) => (s ? review.severities.findIndex((b) => b.name === s) : -1);
  return d.signals
    .filter((s) => {
      const rest = d.signals.filter((o) => o !== s);
      const { corroborated } = corroborate(rest, review.minFamilies);
      const score = rest.reduce((t, o) => t + o.contribution, 0);
      return rank(severityOf(corroborated, score, review)) < rank(d.severity);
    })
    .map((s) => s.observation.signalId);
}
