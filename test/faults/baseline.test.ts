// Control: with no fault, the live pipeline equals the replay reference for the workload.
import { afterAll, describe, expect, it } from 'vitest';
import { Driver, compare, reference, streamBadMessages } from './support/driver.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe('control: undisturbed', () => {
  const d = new Driver(faultEnv('baseline'));
  afterAll(async () => {
    await d.close();
  });
  it('live equals replay', async () => {
    await d.connect();
    const w = buildWorkload();
    const bad = await streamBadMessages(d, 'base');
    const proc = await d.startProcessor();
    const t0 = Date.now();
    await d.run(w, { bad });
    console.log(`run took ${Date.now() - t0} ms`);
    await proc.stop();
    const ref = await reference(d.loaded, w, d.redis);
    const r = await compare('baseline', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    expect(r.outcome.deadLetters).toBe(bad.length);
    // the workload is worth comparing: it raises the flags it was built to raise
    const flagged = new Set(r.flags.map((f) => f.accountId));
    expect(w.expectFlagged.filter((a) => !flagged.has(a))).toEqual([]);
    expect(r.outcome.flags).toBeGreaterThan(40);
  });
});
