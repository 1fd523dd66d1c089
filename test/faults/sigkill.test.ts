// Fault 3: one of two `fairflag run` instances is killed with SIGKILL after a batch's state is in
// Redis and before its offsets are committed; the other takes its partitions over and replays
// that batch; a new instance joins again. No event may be lost (everything committed was
// written) and none counted twice (the replayed batch changes no feature and re-emits only
// identical flags): the end state equals an undisturbed run. The killed instance holds each
// batch between its write and its commit (FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS) and says so in
// its log, so every kill lands in that window.
import { afterAll, describe, expect, it } from 'vitest';
import {
  Driver,
  compare,
  duplicateFlags,
  inputEnds,
  reference,
  streamBadMessages,
  traces,
  until,
} from './support/driver.js';
import { startCli, type RunningCli } from './support/child.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe("fault: an instance is killed with SIGKILL between a batch's write and its commit", () => {
  // a short session, so the survivor does not wait 30 s for the dead one to be dropped
  const env = faultEnv('sigkill', { FAIRFLAG__kafka__sessionTimeout: '8s' });
  const holding = { ...env, FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS: '4000' };
  const d = new Driver(env);
  const children: RunningCli[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await d.close();
  });

  it('loses nothing and counts nothing twice', async () => {
    await d.connect();
    const w = buildWorkload({ seed: 37 });
    const bad = await streamBadMessages(d, 'kill');
    const ref = await reference(d.loaded, w, d.redis);
    const survivor = await startCli(env);
    children.push(survivor);
    let holder = await startCli(holding);
    children.push(holder);
    await Promise.all([survivor.waitReady(), holder.waitReady()]);

    const kills: {
      committed: bigint;
      writtenNotCommitted: number;
      lostBelowCommit: string[];
      checked: number;
    }[] = [];
    await d.run(w, {
      bad,
      chunk: 700,
      gapMs: 1500,
      during: async (stream) => {
        for (const share of [0.3, 0.65]) {
          await stream.reached(share);
          const mark = holder.output.length;
          // a payment or login batch: methods added and failed logins leave traces to look for
          // (sessions are digests); which partitions the holder gets decides which come first
          const traced = [d.topics.paymentMethod, d.topics.login];
          const held = (line: string) =>
            line.includes('not yet committed') && traced.some((t) => line.includes(`"topic":"${t}"`));
          await until(
            'the holding instance to have written a batch it has not committed',
            () => holder.output.slice(mark).split('\n').some(held),
            120_000,
            10,
          );
          holder.kill('SIGKILL');
          const { signal } = await holder.exited;
          expect(signal).toBe('SIGKILL');
          stream.pause();
          // the process is gone: what it committed and what it wrote are frozen now
          const committed = await d.committed();
          const below = await traces(d, committed, ref.dump);
          const above = await traces(d, await inputEnds(d), ref.dump, committed);
          kills.push({
            committed: [...committed.values()].reduce((a, b) => a + b, 0n),
            writtenNotCommitted: above.written,
            lostBelowCommit: below.missing,
            checked: below.checked,
          });
          // the survivor takes the dead member's partitions (once its session expires) and
          // replays what it wrote but did not commit; then a new holder joins and takes some back
          stream.resume();
          holder = await startCli(holding);
          children.push(holder);
          await holder.waitReady();
        }
      },
    });
    console.log(
      `[fault detail] sigkill: ${JSON.stringify(kills, (_, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`,
    );

    for (const k of kills) {
      // nothing lost: every committed event's features were written before the kill
      expect(k.lostBelowCommit).toEqual([]);
      expect(k.checked).toBeGreaterThan(0);
    }
    // every kill came while a batch was written and not committed (the hold says so); at least one
    // of those batches left traces above the committed offset: replayed by the survivor, they must
    // not count twice (features equal the reference below)
    expect(kills).toHaveLength(2);
    expect(kills.some((k) => k.writtenNotCommitted > 0)).toBe(true);

    const r = await compare('sigkill', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    // The replayed batch may send again a flag it had sent before the kill (at-least-once): the
    // survivor decides it again from the same state and events, so one id and revision never
    // carries two contents.
    const dup = duplicateFlags(r.flags);
    console.log(`[fault detail] sigkill duplicate flag messages: ${JSON.stringify(dup)}`);
    expect(dup.conflicting).toEqual([]);
    expect(dup.detailOnly).toEqual([]);
    expect(r.outcome.deadLetters).toBe(bad.length);
    expect(survivor.running).toBe(true);
    expect(children.at(-1)!.running).toBe(true);
    expect(children.filter((c) => !c.running)).toHaveLength(2);
  });
});
