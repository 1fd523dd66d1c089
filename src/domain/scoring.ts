// Scoring and corroboration: a pure function from remembered observations and mitigations to a
// decision per review queue. The only outcome it can produce is "review" or nothing.
import type { Config } from '../../config/schema.js';
import type { StoredObservation } from '../features/model.js';
import { clearedReviewMitigation, reviewPattern, type AppliedMitigation } from './mitigations.js';
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
  score: number;
  threshold: number;
  /** Why the signals do or do not corroborate each other. */
  corroboration: string;
  corroborated: boolean;
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
  return round(Math.min(maxStrength, Math.max(1, ratio)));
}

/**
 * Groups observations by review queue and scores each group. Corroboration (principle 3): at
 * least one signal that is not weak, and either two families or a signal sufficient alone.
 */
export function decide(
  observations: StoredObservation[],
  settings: ReadonlyMap<string, SignalSettings>,
  accountMitigations: AppliedMitigation[],
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
    const pattern = reviewPattern(queue, families);
    const mitigations = [...accountMitigations];
    const cleared = clearedReviewMitigation(pattern, clearedPatterns.get(pattern), asOf, cfg.mitigations);
    if (cleared) mitigations.push(cleared);
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
    const score = round(signals.reduce((t, s) => t + s.contribution, 0));
    const strongOnes = signals.filter((s) => !s.weak);
    const alone = strongOnes.find((s) => s.sufficientAlone);
    let corroboration: string;
    let corroborated = false;
    if (!strongOnes.length) corroboration = 'only weak signals: never enough on their own';
    else if (families.length >= cfg.review.minFamilies) {
      corroborated = true;
      corroboration = `${families.length} families (${families.join(', ')})`;
    } else if (alone) {
      corroborated = true;
      corroboration = `${alone.observation.signalId} is sufficient alone`;
    } else {
      corroboration = `${families.length} famil${families.length === 1 ? 'y' : 'ies'} (${families.join(', ')}); ${cfg.review.minFamilies} needed or a signal sufficient alone`;
    }
    const decision: QueueDecision = {
      queue,
      signals,
      families,
      mitigations,
      score,
      threshold: cfg.review.threshold,
      corroboration,
      corroborated,
    };
    if (corroborated && score >= cfg.review.threshold) {
      decision.severity = [...cfg.review.severities].reverse().find((b) => score >= b.minScore)?.name;
    }
    decisions.push(decision);
  }
  return decisions;
}
