// Fault 3: `fairflag run` is killed with SIGKILL in the middle of a batch and started again. No
// event may be lost (everything committed was written) and none counted twice (the replayed
// batch changes no feature and re-emits only identical flags): the end state equals an
// undisturbed run.
import { afterAll, describe, expect, it } from 'vitest';
import {
  Driver,
  compare,
  duplicateFlags,
  inputEnds,
  reference,
  sleep,
  streamBadMessages,
  traces,
  until,
} from './support/driver.js';
import { startCli, type RunningCli } from './support/child.js';
import { faultEnv } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe('fault: the processor is killed with SIGKILL mid-batch and restarted', () => {
  // a short session, so the restarted process does not wait 30 s for the dead one to be dropped
  const env = faultEnv('sigkill', { FAIRFLAG__kafka__sessionTimeout: '8s' });
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
    const first = await startCli(env);
    children.push(first);
    await first.waitReady();

    const kills: {
      committed: bigint;
      writtenNotCommitted: number;
      lostBelowCommit: string[];
      checked: number;
    }[] = [];
    await d.run(w, {
      bad,
      // big chunks: the processor is busy for a while after each, so a kill lands inside a batch
      chunk: 700,
      gapMs: 1500,
      during: async (stream) => {
        let current = first;
        // Each share is reached with chunks still to come (about 2,700 events in chunks of 700):
        // a processor faster than the stream has committed all that was published by then, and
        // only a later chunk gives it a batch to be killed in.
        for (const share of [0.25, 0.5, 0.7, 0.85]) {
          // a third (and fourth) kill only while none has landed between a batch's writes and its commit
          if (share > 0.6 && kills.some((k) => k.writtenNotCommitted > 0)) break;

          await stream.reached(share);
          const before = await d.totalCommitted();
          await until(
            'the processor to be working on the chunk',
            async () => (await d.totalCommitted()) > before,
            30_000,
            20,
          );
          // A chunk takes about 100-250 ms (faster or slower stretches of the machine), and the
          // first commit is seen some way into it: kill within 20 ms, or the chunk is often done
          // (with 16 KiB fetches, 3 of 8 kills 0-50 ms after it found no batch in flight).
          await sleep(Math.random() * 20);
          current.kill('SIGKILL');
          const { signal } = await current.exited;
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
          current = await startCli(env);
          children.push(current);
          // resumed only once it is ready: chunks published while it started would be a backlog
          // it may finish before the next share is reached, leaving no batch to kill
          await current.waitReady();
          stream.resume();
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
    // at least one kill caught a batch between its feature writes and its commit: replayed after
    // the restart, it must not count twice (features equal the reference below)
    expect(kills.some((k) => k.writtenNotCommitted > 0)).toBe(true);

    const r = await compare('sigkill', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    // The replayed batch may send again a flag it had sent before the kill (at-least-once), but a
    // flag revision is claimed with its message before it is sent, so the resend is that very
    // message: one id and revision never carries two contents.
    const dup = duplicateFlags(r.flags);
    console.log(`[fault detail] sigkill duplicate flag messages: ${JSON.stringify(dup)}`);
    expect(dup.conflicting).toEqual([]);
    expect(dup.detailOnly).toEqual([]);
    expect(r.outcome.deadLetters).toBe(bad.length);
    for (const c of children.slice(0, -1)) expect(c.running).toBe(false);
    expect(children.at(-1)!.running).toBe(true);
  });
});
