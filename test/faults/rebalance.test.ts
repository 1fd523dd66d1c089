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
  const drivers: Driver[] = [d];
  const procs: Processor[] = [];
  afterAll(async () => {
    for (const p of procs) await p.stop();
    for (const x of drivers) await x.close();
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

  it('partitions move back and forth between two instances five times while events flow; the result equals the reference', async () => {
    // topics, group and key prefix of its own: the workload is compared with its own reference
    const d = new Driver(faultEnv('back-and-forth'));
    drivers.push(d);
    await d.connect();
    const w = buildWorkload({ seed: 59, streamScale: 2 });
    const bad = await streamBadMessages(d, 'back-and-forth');
    const ref = await reference(d.loaded, w, d.redis);
    const first = await d.startProcessor();
    procs.push(first);
    const moves: { joined: number; processed: number }[] = [];
    await d.run(w, {
      bad,
      gapMs: 300,
      during: async (stream) => {
        for (let round = 0; round < 5; round++) {
          // the last visitor joins with over 40% of the stream still to come: a join slowed by a
          // busy machine must still find events on its partitions
          const share = 0.1 + round * 0.12;
          await stream.reached(share);
          // A join and a leave are rebalances of seconds. The stream flows meanwhile, but waits
          // at the next round's share until this round is over: the processors share this process
          // with the publisher, and the faster they are, the sooner it would have published
          // everything, leaving the last visitors nothing to take over.
          stream.holdAt(share + 0.12);
          // a fresh instance each time: it starts with nothing in memory and loads what the first
          // one wrote; when it leaves, the first one loads again what it wrote meanwhile
          const visitor = await d.startProcessor();
          procs.push(visitor);
          await until('the visitor to join and take partitions', () => visitor.ready(), 60_000);
          // events for it to take, wherever the stream stands
          stream.resume();
          const joined = visitor.ownedPartitions.length;
          await until('the visitor to process some events', () => visitor.counts.processed > 0, 60_000, 50);
          moves.push({ joined, processed: visitor.counts.processed });
          stream.holdAt(share + 0.12);
          await visitor.stop();
          procs.splice(procs.indexOf(visitor), 1);
        }
      },
    });
    console.log(`[fault detail] back and forth: ${JSON.stringify(moves)}`);
    expect(moves).toHaveLength(5);
    for (const m of moves) {
      expect(m.joined).toBeGreaterThan(0);
      expect(m.processed).toBeGreaterThan(0);
    }
    const r = await compare('back and forth', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    const dup = duplicateFlags(r.flags);
    expect(dup.conflicting).toEqual([]);
    expect(dup.detailOnly).toEqual([]);
    expect(r.outcome.deadLetters).toBe(bad.length);
  });

  it('a cold start: a new instance with nothing in memory continues exactly where the old one stopped', async () => {
    for (const p of procs.splice(0)) await p.stop();
    const d = new Driver(faultEnv('cold-start'));
    drivers.push(d);
    await d.connect();
    const w = buildWorkload({ seed: 61 });
    const bad = await streamBadMessages(d, 'cold');
    const ref = await reference(d.loaded, w, d.redis);
    let current = await d.startProcessor();
    procs.push(current);
    let before = 0;
    await d.run(w, {
      bad,
      gapMs: 300,
      during: async (stream) => {
        await stream.reached(0.5);
        stream.pause();
        await d.settle();
        before = current.counts.processed;
        await current.stop();
        procs.splice(0);
        current = await d.startProcessor();
        procs.push(current);
        stream.resume();
      },
    });
    // the new instance loaded every account it touched from Redis, none from its own memory
    expect(before).toBeGreaterThan(0);
    expect(current.accounts.stats.loads).toBeGreaterThan(0);
    expect(current.accounts.stats.loads - current.accounts.stats.loadedEmpty).toBeGreaterThan(0);
    const r = await compare('cold start', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    expect(r.outcome.deadLetters).toBe(bad.length);
  });
});
