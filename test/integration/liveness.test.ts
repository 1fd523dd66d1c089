// /livez fails and `fairflag run` exits non-zero when the consumer cannot recover by itself: a
// crash kafkajs will not restart from, or a batch stuck beyond processing.stuckBatchTimeout.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Consumer } from 'kafkajs';
import { Processor } from '../../src/kafka/processor.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { startCli, type RunningCli } from '../faults/support/child.js';
import { Driver, quietLogger, until } from '../faults/support/driver.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

const drivers: Driver[] = [];
const children: RunningCli[] = [];
const rogues: Consumer[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const r of rogues.splice(0)) await r.disconnect();
});
afterAll(async () => {
  for (const d of drivers) await d.close();
});

async function driver(name: string, extra: Record<string, string> = {}): Promise<Driver> {
  const d = await new Driver(isolatedEnv(name, endpoints(), 't', extra)).connect();
  drivers.push(d);
  return d;
}

/**
 * Another member already in the processor's group, with kafkajs's own assigner: the broker refuses
 * the processor's join (INCONSISTENT_GROUP_PROTOCOL, not retriable), so kafkajs does not restart.
 */
async function rogueMember(d: Driver): Promise<void> {
  const rogue = d.kafka.consumer({ groupId: d.config.kafka.groupId });
  rogues.push(rogue);
  const joined = new Promise<void>((r) => rogue.on(rogue.events.GROUP_JOIN, () => r()));
  await rogue.connect();
  await rogue.subscribe({ topics: [d.topics.login] });
  await rogue.run({ eachMessage: async () => {} });
  await joined;
}

const PROTOCOLS = "The group member's supported protocols are incompatible with those of existing members";

describe('liveness', () => {
  it('a consumer crash kafkajs will not restart from fails /livez with the reason', async () => {
    const d = await driver('live-crash', { FAIRFLAG_HTTP_PORT: '0' });
    await rogueMember(d);
    const reasons: string[] = [];
    const loaded = loadConfig({ env: { ...d.env, FAIRFLAG_HTTP_HOST: '127.0.0.1' } });
    const proc = await Processor.start({ loaded, log: quietLogger(), onFatal: (r) => reasons.push(r) });
    try {
      await until('the crash', () => reasons.length > 0);
      const res = await fetch(`http://127.0.0.1:${proc.httpPort}/livez`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { live: boolean; reason: string };
      expect(body.live).toBe(false);
      expect(body.reason).toBe(`the Kafka consumer crashed and will not restart: ${PROTOCOLS}`);
      expect(reasons).toEqual([body.reason]);
    } finally {
      await proc.stop();
    }
  });

  it('run exits 3 when the consumer crashes for good', async () => {
    const d = await driver('live-crash-run');
    await rogueMember(d);
    const child = await startCli(d.env);
    children.push(child);
    const { code } = await child.exited;
    expect(code, child.output.slice(-3000)).toBe(3);
    expect(child.output).toContain('cannot go on: /livez fails from now on');
    expect(child.output).toContain(PROTOCOLS);
  });

  it('a batch stuck beyond processing.stuckBatchTimeout fails /livez and run exits 3', async () => {
    const d = await driver('live-stuck', {
      FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS: '60000',
      FAIRFLAG__processing__stuckBatchTimeout: '2s',
      FAIRFLAG__processing__shutdownTimeout: '10s',
    });
    const child = await startCli(d.env);
    children.push(child);
    await child.waitReady();
    expect((await child.get('/livez'))?.status).toBe(200);
    await d.publish([
      {
        event: {
          family: 'login',
          event: {
            eventId: 'live-stuck-1',
            accountId: 'acct-live-stuck',
            occurredAt: Date.now() - 60_000,
            outcome: 'FAILURE',
            ip: '175.16.199.1',
            deviceId: null,
            sessionId: null,
          },
        },
      },
    ]);
    let body = '';
    await until(
      '/livez to fail',
      async () => {
        const res = await child.get('/livez');
        body = (await res?.text()) ?? '';
        return res?.status === 503;
      },
      30_000,
    );
    expect(body).toMatch(
      /"reason":"batch t-live-stuck-.*activity\.login\/\d offsets 0-0 in flight for \d+ ms, more than processing\.stuckBatchTimeout \(2000 ms\)"/,
    );
    const { code } = await child.exited;
    expect(code, child.output.slice(-3000)).toBe(3);
  });
});
