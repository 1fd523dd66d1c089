import { describe, expect, it } from 'vitest';
import { InFlight } from '../../src/kafka/in-flight.js';

const batch = (topic: string, partition: number, offsets: string[]) => ({
  topic,
  partition,
  messages: offsets.map((offset) => ({ offset })) as never,
});

describe('InFlight', () => {
  it('lists the batches being handled oldest first, with their offsets and age', () => {
    const f = new InFlight();
    const endLate = f.begin(batch('a', 1, ['5', '6', '7']), 2_000);
    f.begin(batch('b', 0, ['10']), 1_000);
    expect(f.list(4_000)).toEqual([
      {
        topic: 'b',
        partition: 0,
        firstOffset: '10',
        lastOffset: '10',
        messages: 1,
        since: 1_000,
        ageMs: 3_000,
      },
      {
        topic: 'a',
        partition: 1,
        firstOffset: '5',
        lastOffset: '7',
        messages: 3,
        since: 2_000,
        ageMs: 2_000,
      },
    ]);
    endLate();
    expect(f.list(4_000).map((b) => b.topic)).toEqual(['b']);
  });

  it("does not forget a partition's next batch when an earlier one's end is reported late", () => {
    const f = new InFlight();
    const first = f.begin(batch('a', 1, ['1']), 1_000);
    f.begin(batch('a', 1, ['2']), 2_000);
    first();
    expect(f.list(3_000).map((b) => b.firstOffset)).toEqual(['2']);
  });
});
