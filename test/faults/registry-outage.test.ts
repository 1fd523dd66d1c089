// Fault 4: the schema registry is unreachable at start, and later while events flow. Start-up
// waits with a clear line per attempt and proceeds once it answers (or gives up with exit code 3
// after registry.startupTimeout); while it is down, schema ids the processor already knows
// decode from its cache, so nothing good is dead-lettered and the result equals the reference.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Codec, DecodeError, RegistryUnavailableError } from '../../src/kafka/codec.js';
import type { Processor } from '../../src/kafka/processor.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { accountTakeover, HOUR } from '../../src/scenarios/reference.js';
import { runCli, startCli, type RunningCli } from './support/child.js';
import { Driver, compare, reference, sleep, streamBadMessages, until } from './support/driver.js';
import { FAULT_STATE, faultEnv, faultStack, service } from './support/stack.js';
import { buildWorkload } from './support/workload.js';

describe('fault: the schema registry is unreachable', () => {
  const children: RunningCli[] = [];
  const drivers: Driver[] = [];
  let proc: Processor | undefined;
  /** The registry's JVM while it is stopped with SIGSTOP: resumed here if a test ends early. */
  let stalled: number | undefined;
  afterAll(async () => {
    if (stalled) process.kill(stalled, 'SIGCONT');
    await service('start', 'registry').catch(() => undefined);
    for (const c of children) c.kill('SIGKILL');
    await proc?.stop();
    for (const d of drivers) await d.close();
  });

  it('at start: waits with a log line per attempt, proceeds when it answers, gives up with exit 3 after the timeout', async () => {
    const env = faultEnv('registry-start');
    const url = faultStack().registryUrl;
    await service('stop', 'registry');

    const gaveUp = await runCli({ ...env, FAIRFLAG__registry__startupTimeout: '3s' }, ['run'], 60_000);
    expect(gaveUp.code).toBe(3);
    expect(gaveUp.output).toContain(`schema registry at ${url} not ready (attempt 1:`);
    expect(gaveUp.output).toMatch(
      new RegExp(`fairflag: schema registry at ${url.replace(/[.]/g, '\\.')} not usable after \\d+ attempts`),
    );

    const child = await startCli(env);
    children.push(child);
    await until(
      'two attempts logged',
      () => (child.output.match(/not ready \(attempt \d+:/g) ?? []).length >= 2,
      60_000,
    );
    expect(child.running).toBe(true);
    expect(await child.ready()).toBe(false);
    const line = child.output.split('\n').find((l) => l.includes('not ready (attempt 1:'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 40, msg: expect.stringContaining('retrying') });

    await service('start', 'registry');
    await child.waitReady();
    // and it works: the takeover scenario raises its flag
    const d = new Driver(env);
    drivers.push(d);
    await d.connect();
    const b = accountTakeover(Date.now() - 2 * HOUR, `reg${Date.now().toString(36)}`);
    for (const phase of b.phases) {
      await d.publish(phase.map((event) => ({ event })));
      await d.settle();
    }
    const flags = (await d.flagMessages()).filter((f) => f.accountId === b.accountId);
    expect(flags.map((f) => [f.reviewQueue, f.severity])).toEqual([['account_security', 'high']]);
    child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });

  it('while events flow: known schema ids decode from the cache, nothing good is dead-lettered, result equals the reference', async () => {
    const d = new Driver(faultEnv('registry-flow'));
    drivers.push(d);
    await d.connect();
    const w = buildWorkload({ seed: 41 });
    // no unknown schema ids in the stream here: one the processor has not seen before can only be
    // judged by the registry, so its batch waits (see the unknown id below)
    const bad = (await streamBadMessages(d, 'registry')).filter((m) => m.reason !== 'unknown_schema_id');
    const ref = await reference(d.loaded, w, d.redis);
    proc = await d.startProcessor();
    const p = proc;
    const unknown = Buffer.concat([Buffer.from([0, 0, 0x0f, 0x42, 0x3f]), Buffer.from('??')]); // id 999999
    let upAgainAt = 0;
    let progressWhileDown = 0n;
    const readiness: boolean[] = [];
    await d.run(w, {
      bad,
      gapMs: 500,
      during: async (stream) => {
        await stream.reached(0.3);
        await service('stop', 'registry');
        const atStop = await d.totalCommitted();
        const publishedAtStop = stream.published;
        const t0 = Date.now();
        while (Date.now() - t0 < 8_000) {
          readiness.push(await p.ready());
          await sleep(500);
        }
        expect(stream.published).toBeGreaterThan(publishedAtStop);
        progressWhileDown = (await d.totalCommitted()) - atStop;

        // an id the registry never gave: while it is down nobody can tell, so it must not be
        // dead-lettered; its batch is retried until the registry answers
        await d.send(new Map([[d.topics.ip, [{ key: 'acct-unknown-id', value: unknown, partition: 0 }]]]));
        await until('the unknown id to be tried', async () =>
          /cause="registry"\} [1-9]/.test(
            await p.metrics.registry.getSingleMetricAsString('fairflag_batch_retries_total'),
          ),
        );
        await sleep(2000);
        expect((await d.deadLetters()).filter((x) => x.value?.equals(unknown))).toEqual([]);
        // the earliest it can answer: stack.sh returns only after its own readiness check
        upAgainAt = Date.now();
        await service('start', 'registry');
        await until('readiness with the registry back', () => p.ready(), 60_000);
      },
    });
    console.log(
      `[fault detail] registry down: ${progressWhileDown} offsets committed in 8 s from the schema cache; readiness ${readiness.join(',')}`,
    );
    // processing went on from the cache while the registry was down, and readiness said it was down
    expect(progressWhileDown).toBeGreaterThan(100n);
    expect(readiness.every((r) => !r)).toBe(true);

    const r = await compare('registry outage', d, w, ref, bad);
    expect(r.featureDiff).toEqual([]);
    expect(r.live).toEqual(ref.flags);
    const unknownDead = r.dead.filter((x) => x.value?.equals(unknown));
    expect(unknownDead.map((x) => x.reason)).toEqual(['unknown_schema_id']);
    expect(unknownDead[0]!.failedAt).toBeGreaterThanOrEqual(upAgainAt);
    // nothing but the bad messages and that one
    expect(r.outcome.deadLetters).toBe(bad.length + 1);
    for (const m of bad) {
      const got = r.dead.filter((x) =>
        x.headers.some((h) => h.key === 'x-bad' && h.value?.toString() === m.name),
      );
      expect(
        got.map((x) => x.reason),
        m.name,
      ).toEqual([m.reason]);
    }
  });

  it('stalled (accepting connections, never answering): a lookup fails within registry.requestTimeout as an outage, not a hang, and works once it answers', async () => {
    const { config } = loadConfig({
      env: faultEnv('registry-stall', { FAIRFLAG__registry__requestTimeout: '1s' }),
    });
    const codec = await Codec.connect(config);
    const known = await codec.encode('login', {
      eventId: 'stall-1',
      accountId: 'acct-stall',
      occurredAt: Date.now() - 60_000,
      outcome: 'SUCCESS',
      ip: '81.2.69.160',
      deviceId: 'd',
      sessionId: null,
    });
    const jvm = Number(readFileSync(join(FAULT_STATE, 'run', 'registry.pid'), 'utf8').trim());
    process.kill(jvm, 'SIGSTOP');
    stalled = jvm;
    // an id this codec has not seen: only the registry can say what it is
    const unseen = Buffer.concat([Buffer.from([0, 0, 0x0f, 0x42, 0x3e]), Buffer.from('??')]);
    let elapsed: number;
    try {
      const t0 = Date.now();
      const err = await codec.decodeAs('login', unseen).catch((e: unknown) => e);
      elapsed = Date.now() - t0;
      expect(err).toBeInstanceOf(RegistryUnavailableError);
      expect((err as Error).message).toMatch(/^schema registry lookup of id 999998 failed: .*[Tt]imeout/);
    } finally {
      process.kill(jvm, 'SIGCONT');
      stalled = undefined;
    }
    // one request of 1 s, and at most one retry of it: not the 5 minutes of the test's own limit
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(10_000);
    // the cache still answers for an id it knows, and the registry does again once resumed
    await expect(codec.decodeAs('login', known)).resolves.toMatchObject({ eventId: 'stall-1' });
    await until(
      'the resumed registry to say the id is unknown',
      async () => {
        const e = await codec.decodeAs('login', unseen).catch((x: unknown) => x);
        return e instanceof DecodeError && e.reason === 'unknown_schema_id';
      },
      30_000,
    );
  });
});
