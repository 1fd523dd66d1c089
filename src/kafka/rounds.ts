// A round: the batches of one partition that a single fetch brought (one per input topic with new
// messages), processed as one engine batch and written together: one snapshot of the partition's
// changed accounts, one Redis write, one offset commit. At a steady rate a fetch brings a few
// messages per topic, and an account touched on two topics was encoded and written twice, once per
// batch. Results do not depend on it: the engine's answers never depend on how events are batched.
//
// Each batch of a round keeps its own share of the result: the outcomes of its messages, the flags
// and counterpart records its events triggered, the flags its review outcomes closed. Its dead
// letters, produce requests, metrics and offsets are worked out from that share as for a batch
// processed alone.
import { sourceEventId } from '../engine/counterparts.js';
import type { BatchResult, EngineInput } from '../engine/engine.js';

/** What one batch of a round owns of the round's result. */
export type BatchShare = Pick<BatchResult, 'outcomes' | 'emissions' | 'counterparts' | 'closed'>;

/** The event an input carries (or relays), by which flags and records find their batch. */
function eventIdOf(input: EngineInput): string | undefined {
  if (input.kind === 'event') return input.event.event.eventId;
  if (input.kind === 'counterpart') return sourceEventId(input.record);
  return undefined;
}

/**
 * Splits the result of processing the batches' inputs concatenated in order. Anything whose
 * source is not found (it cannot be, short of a bug) goes to the first batch, so nothing is lost.
 */
export function shareOut(result: BatchResult, batches: readonly (readonly EngineInput[])[]): BatchShare[] {
  const shares: BatchShare[] = [];
  const owner = new Map<string, BatchShare>();
  let at = 0;
  let outcomesOwner: BatchShare | undefined;
  for (const inputs of batches) {
    const share: BatchShare = {
      outcomes: result.outcomes.slice(at, at + inputs.length),
      emissions: [],
      counterparts: [],
      closed: [],
    };
    at += inputs.length;
    for (const input of inputs) {
      const id = eventIdOf(input);
      if (id !== undefined && !owner.has(id)) owner.set(id, share);
      if (input.kind === 'outcome') outcomesOwner ??= share;
    }
    shares.push(share);
  }
  if (at !== result.outcomes.length)
    throw new Error(`a round's result has ${result.outcomes.length} outcomes for ${at} inputs`);
  const first = shares[0];
  if (!first) return shares;
  for (const e of result.emissions) (owner.get(e.flag.triggeringEventId) ?? first).emissions.push(e);
  for (const r of result.counterparts) (owner.get(sourceEventId(r)) ?? first).counterparts.push(r);
  // only review outcomes close flags, and a round holds at most one review-outcome batch
  (outcomesOwner ?? first).closed.push(...result.closed);
  return shares;
}
