// Fault 1: Redis stops for a while in the middle of the stream and comes back. The processor
// must pause (not ready, nothing committed for events whose features were not written), resume by
// itself, and end with exactly the features and flags of an undisturbed run.
import { afterAll, describe, expect, it } from 'vitest';
import type { Processor } from '../../src/kafka/processor.js';
import { Driver, compare, reference, sleep, streamBadMessages, traces, until } from './support/driver.js';
import { faultEnv, service } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

const OUTAGE_MS = 12_000;

describe('fault: Redis stops mid-stream and comes back', () => {
  const d = new Driver(faultEnv('redis-outage'));
  let proc: Processor | undefined;
  afterAll(async () => {
    await service('start', 'redis').catch(() => undefined);
    await proc?.stop();
    await d.close();
  });

  it('pauses without committing unwritten events, resumes by itself, and ends equal to the reference', async () => {
    await d.connect();
    const w = buildWorkload({ seed: 11 });
    const bad = await streamBadMessages(d, 'redis');
    const ref = await reference(d.loaded, w, d.redis);
    proc = await d.startProcessor();
    const p = proc;

    const readiness: boolean[] = [];
    const commitsWhileDown: bigint[] = [];
    let atStop = 0n;
    let maxWhileDown = new Map<string, bigint>();
    let proof = { checked: 0, written: 0, missing: [] as string[] };
    await d.run(w, {
      bad,
      gapMs: 600, // the stream keeps flowing through the outage
      during: async (stream) => {
        await stream.reached(0.3);
        const before = await d.totalCommitted();
        await until(
          'the processor to be working on the stream',
          async () => (await d.totalCommitted()) > before,
          30_000,
        );
        expect(await p.ready()).toBe(true);

        await service('stop', 'redis');
        const stoppedAt = Date.now();
        // a batch whose writes finished just before the stop may still commit: allow a moment
        await sleep(1500);
        atStop = await d.totalCommitted();
        const publishedAtStop = stream.published;
        while (Date.now() - stoppedAt < OUTAGE_MS) {
          readiness.push(await p.ready());
          const c = await d.committed();
          commitsWhileDown.push([...c.values()].reduce((a, b) => a + b, 0n));
          maxWhileDown = c;
          await sleep(500);
        }
        // the stream went on during the outage: there was work a careless processor could commit
        expect(stream.published).toBeGreaterThan(publishedAtStop);

        await service('start', 'redis');
        // everything committed while Redis was down had its features written before the stop
        proof = await traces(d, maxWhileDown, ref.dump);
        await until('readiness after Redis is back', () => p.ready(), 60_000);
      },
    });

    expect(readiness.length).toBeGreaterThan(5);
    expect(
      readiness.every((r) => r === false),
      `readiness while Redis was down: ${readiness.join(',')}`,
    ).toBe(true);
    expect(
      commitsWhileDown.every((c) => c === atStop),
      `committed offsets while down: ${commitsWhileDown.join(',')}`,
    ).toBe(true);
    expect(proof.checked).toBeGreaterThan(20);
    expect(proof.missing).toEqual([]);
    const retries = await p.metrics.registry.getSingleMetricAsString('fairflag_batch_retries_total');
    expect(retries).toMatch(/cause="redis"\} [1-9]/);

    const r = await compare('redis outage', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    expect(r.outcome.deadLetters).toBe(bad.length);
    expect(r.outcome.deadLetterMessages).toBeGreaterThanOrEqual(bad.length);
    expect(await p.ready()).toBe(true);
  });
});
