// Fault 2: the Kafka broker restarts in the middle of the stream (stack.sh restart kafka, data
// kept). The processor must reconnect and rejoin by itself and end with exactly the features and
// flags of an undisturbed run.
import { afterAll, describe, expect, it } from 'vitest';
import type { Processor } from '../../src/kafka/processor.js';
import { Driver, compare, reference, sleep, streamBadMessages, until } from './support/driver.js';
import { faultEnv, service } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe('fault: the Kafka broker restarts mid-stream', () => {
  const d = new Driver(faultEnv('kafka-restart'));
  let proc: Processor | undefined;
  afterAll(async () => {
    await proc?.stop();
    await d.close();
  });

  it('reconnects by itself and ends equal to the reference', async () => {
    await d.connect();
    const w = buildWorkload({ seed: 23 });
    const bad = await streamBadMessages(d, 'kafka');
    const ref = await reference(d.loaded, w, d.redis);
    proc = await d.startProcessor();
    const p = proc;
    const readiness: boolean[] = [];
    let recoveredInMs = 0;
    await d.run(w, {
      bad,
      during: async (stream) => {
        await stream.reached(0.3);
        const before = await d.totalCommitted();
        await until(
          'the processor to be working on the stream',
          async () => (await d.totalCommitted()) > before,
          30_000,
        );
        expect(await p.ready()).toBe(true);
        // the platform's producers wait for the broker too; the processor is what is under test
        stream.pause();
        const t0 = Date.now();
        const watching = (async () => {
          while (Date.now() - t0 < 8_000) {
            readiness.push(await p.ready());
            await sleep(100);
          }
        })();
        await service('restart', 'kafka');
        await watching;
        stream.resume();
        await until('readiness after the broker restart', () => p.ready(), 120_000, 500);
        recoveredInMs = Date.now() - t0;
      },
    });
    console.log(
      `[fault detail] kafka restart: ready again after ${recoveredInMs} ms; readiness samples ${readiness.join(',')}`,
    );
    // while the broker was away the processor said so
    expect(readiness).toContain(false);

    const r = await compare('kafka restart', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    expect(r.outcome.deadLetters).toBe(bad.length);
    expect(await p.ready()).toBe(true);
  });
});
