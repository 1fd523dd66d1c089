// The batches a processor is handling right now: what a stop that takes too long, or the
// stuck-batch check, reports.
import type { Batch } from 'kafkajs';

/** A batch being handled: from which offset to which, since when (epoch ms). */
export interface InFlightBatch {
  topic: string;
  partition: number;
  firstOffset: string;
  lastOffset: string;
  messages: number;
  since: number;
}

export class InFlight {
  private readonly batches = new Map<string, InFlightBatch>();

  /** Records a batch as begun; call the returned function when it is over, however it ended. */
  begin(batch: Pick<Batch, 'topic' | 'partition' | 'messages'>, now = Date.now()): () => void {
    const { topic, partition, messages } = batch;
    const key = `${topic}/${partition}`;
    const entry: InFlightBatch = {
      topic,
      partition,
      firstOffset: messages[0]?.offset ?? '',
      lastOffset: messages[messages.length - 1]?.offset ?? '',
      messages: messages.length,
      since: now,
    };
    this.batches.set(key, entry);
    return () => {
      if (this.batches.get(key) === entry) this.batches.delete(key);
    };
  }

  /** Oldest first, with how long each has been going. */
  list(now = Date.now()): (InFlightBatch & { ageMs: number })[] {
    return [...this.batches.values()]
      .sort((a, b) => a.since - b.since)
      .map((b) => ({ ...b, ageMs: now - b.since }));
  }
}
