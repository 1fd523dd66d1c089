// Fault 5: a consumer-group rebalance while events flow: a second instance joins, takes over some
// partitions, then leaves and hands them back. Batches in flight at a rebalance may be processed
// by both; the end state must still equal an undisturbed run, and a flag id never appears with
// two different contents for one revision.
import { afterAll, describe, expect, it } from 'vitest';
import type { Processor } from '../../src/kafka/processor.js';
import { Driver, compare, duplicateFlags, reference, streamBadMessages, until } from './support/driver.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe('fault: a consumer-group rebalance while events flow', () => {
  const d = new Driver(faultEnv('rebalance'));
  const procs: Processor[] = [];
  afterAll(async () => {
    for (const p of procs) await p.stop();
    await d.close();
  });

  it('a second instance joins and leaves mid-stream; the result equals the reference', async () => {
    await d.connect();
    const w = buildWorkload({ seed: 53 });
    const bad = await streamBadMessages(d, 'rebalance');
    const ref = await reference(d.loaded, w, d.redis);
    const first = await d.startProcessor();
    procs.push(first);
    let second: Processor | undefined;
    let secondProcessed = 0;
    await d.run(w, {
      bad,
      gapMs: 500,
      during: async (stream) => {
        await stream.reached(0.2);
        second = await d.startProcessor();
        procs.push(second);
        const s = second;
        await until('the second instance to join and take partitions', () => s.ready(), 60_000);
        await stream.reached(0.7);
        await until(
          'the second instance to process some of the stream',
          () => s.counts.processed > 0,
          60_000,
        );
        secondProcessed = s.counts.processed;
        await s.stop();
        procs.splice(procs.indexOf(s), 1);
      },
    });
    console.log(
      `[fault detail] rebalance: first instance processed ${first.counts.processed}, second ${secondProcessed} before leaving`,
    );
    expect(secondProcessed).toBeGreaterThan(0);
    expect(first.counts.processed).toBeGreaterThan(0);

    const r = await compare('rebalance', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    // no flag id and revision with two contents (a batch replayed by the new owner of a partition
    // would re-emit its flags; they must be the same messages)
    const dup = duplicateFlags(r.flags);
    console.log(`[fault detail] rebalance duplicate flag messages: ${JSON.stringify(dup)}`);
    expect(dup.conflicting).toEqual([]);
    expect(dup.detailOnly).toEqual([]);
    expect(r.outcome.deadLetters).toBe(bad.length);
    expect(await first.ready()).toBe(true);
  });
});
