// What the pipeline benchmark needs from inside the processor that BatchTiming does not say, taken
// by wrapping Engine.prototype.process and .persist (install it before any processor starts):
// - when each batch's state is durable in Redis: BatchTiming.featuresWrittenAt is taken when the
//   engine has processed the batch, before its flags are produced and its state persisted;
// - how many counterpart records were emitted: inputs a phase must wait for as well as its events.
import { Engine, type BatchResult, type EngineInput } from '../src/engine/engine.js';

export interface EngineProbe {
  counterpartsEmitted: number;
  /** Produce time (epoch ms) of the events to time, by event id; each leaves once timed. */
  readonly sentAt: Map<string, number>;
  /** Produce -> durable (ms) of those events, in the order their batches were persisted. */
  readonly durableMs: number[];
  /** The produce time of each of those (the same order): where in a phase the slow ones were. */
  readonly durableSentAt: number[];
  /** How long each successful persist took (ms). */
  readonly persistMs: number[];
}

export function installEngineProbe(): EngineProbe {
  const probe: EngineProbe = {
    counterpartsEmitted: 0,
    sentAt: new Map(),
    durableMs: [],
    durableSentAt: [],
    persistMs: [],
  };
  const ids = new WeakMap<BatchResult, string[]>();
  const process = Engine.prototype.process;
  const persist = Engine.prototype.persist;
  Engine.prototype.process = async function (inputs: readonly EngineInput[], partition: number) {
    const result = await process.call(this, inputs, partition);
    probe.counterpartsEmitted += result.counterparts.length;
    if (probe.sentAt.size)
      ids.set(
        result,
        inputs.flatMap((i) => (i.kind === 'event' ? [i.event.event.eventId] : [])),
      );
    return result;
  };
  Engine.prototype.persist = async function (result: BatchResult) {
    const started = performance.now();
    await persist.call(this, result);
    const at = Date.now();
    probe.persistMs.push(performance.now() - started);
    for (const id of ids.get(result) ?? []) {
      const sent = probe.sentAt.get(id);
      if (sent === undefined) continue;
      probe.durableMs.push(at - sent);
      probe.durableSentAt.push(sent);
      probe.sentAt.delete(id);
    }
  };
  return probe;
}
