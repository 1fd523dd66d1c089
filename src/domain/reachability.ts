// A signal that can never be part of a review is a silent hole in the policy: it fires, shows in
// explain, and nobody ever sees the account. Found by scoring each queue's best case, with the
// scoring itself, so the check cannot drift from what the engine does.
import type { Config } from '../../config/schema.js';
import type { StoredObservation } from '../features/model.js';
import { decide, type SignalSettings } from './scoring.js';

export interface UnreachableSignal {
  signalId: string;
  queue: string;
  reason: string;
}

/**
 * Every enabled signal that cannot reach review under any combination the config allows. Adding a
 * signal never lowers a score nor breaks corroboration, so the best case of a queue is all of its
 * signals at once, each at its maxStrength, with no mitigation: if that is not a review, none is.
 */
export function unreachableSignals(
  settings: ReadonlyMap<string, SignalSettings>,
  cfg: Pick<Config, 'review' | 'mitigations'>,
): UnreachableSignal[] {
  const best: StoredObservation[] = [...settings.values()].map((s) => ({
    signalId: s.definition.id,
    family: s.definition.family,
    observedAt: 0,
    eventId: `best-case-${s.definition.id}`,
    observed: s.maxStrength,
    threshold: 1,
    window: 'best case',
    summary: 'best case',
    evidenceEventIds: [],
  }));
  const out: UnreachableSignal[] = [];
  for (const d of decide(best, settings, [], new Map(), 0, cfg)) {
    if (d.severity) continue;
    const ids = d.signals.map((s) => s.observation.signalId).sort();
    const alone = ids.length === 1 ? `alone in queue ${d.queue}` : `queue ${d.queue} (${ids.join(', ')})`;
    const reason = !d.corroborated
      ? `${alone}, nothing can corroborate it: ${d.corroboration}`
      : `${alone}: at most ${d.score} with every signal at its maxStrength, below the review threshold ${d.threshold}`;
    for (const signalId of ids) out.push({ signalId, queue: d.queue, reason });
  }
  return out;
}
