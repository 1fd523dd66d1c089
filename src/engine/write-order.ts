// The order in which one partition's batches may write. Batches of different topics of the same
// partition are processed concurrently (kafkajs runs them side by side), and they share accounts:
// a later batch's snapshot may hold an earlier batch's changes, including flags that batch has not
// produced yet. So each partition's batches produce and persist one after the other, in the order
// they were processed: a snapshot never reaches Redis before the flags it implies reach Kafka.

export interface WriteTurn {
  /** Settles when every earlier batch of the partition has written; rejects if one gave up. */
  readonly ready: Promise<void>;
  done(): void;
  /** This batch gave up (its partition was revoked, the processor stops): later turns fail too. */
  fail(err: unknown): void;
}

export class WriteOrder {
  private readonly last = new Map<number, Promise<void>>();

  /** The next turn of a partition; taken synchronously when its batch's processing ends. */
  take(partition: number): WriteTurn {
    const ready = this.last.get(partition) ?? Promise.resolve();
    let done!: () => void;
    let fail!: (err: unknown) => void;
    const mine = new Promise<void>((resolve, reject) => {
      done = resolve;
      fail = reject;
    });
    // nobody may be waiting on it yet: a rejection is not an unhandled one
    mine.catch(() => undefined);
    this.last.set(partition, mine);
    return { ready, done, fail };
  }

  /** After a partition's memory was dropped: batches processed from now on start a new order. */
  reset(partition?: number): void {
    if (partition === undefined) this.last.clear();
    else this.last.delete(partition);
  }
}
