// Stopping `fairflag run`: a stop that cannot finish within processing.shutdownTimeout exits
// non-zero naming the batch still in flight, and a second signal exits at once.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { startCli, type RunningCli } from '../faults/support/child.js';
import { Driver, until } from '../faults/support/driver.js';
import { isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

const HELD = 'batch written, not yet committed (fault testing hold)';

const login = (n: number): ActivityEvent => ({
  family: 'login',
  event: {
    eventId: `shutdown-${n}`,
    accountId: `acct-shutdown-${n}`,
    occurredAt: Date.now() - 60_000,
    outcome: 'FAILURE',
    ip: '175.16.199.1',
    deviceId: null,
    sessionId: null,
  },
});

/** A running processor holding a batch for 60 s between writing it and committing it. */
async function holding(name: string, extra: Record<string, string> = {}) {
  const env = isolatedEnv(name, endpoints(), 't', {
    FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS: '60000',
    ...extra,
  });
  const driver = await new Driver(env).connect();
  drivers.push(driver);
  const child = await startCli(env);
  children.push(child);
  await child.waitReady();
  await driver.publish([{ event: login(1) }]);
  await until('a batch held before its commit', () => child.output.includes(HELD), 60_000);
  return child;
}

const drivers: Driver[] = [];
const children: RunningCli[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(async () => {
  for (const d of drivers) await d.close();
});

describe('stopping fairflag run', () => {
  it('exits 4 once processing.shutdownTimeout has passed, naming the batch still in flight', async () => {
    const child = await holding('shutdown-deadline', { FAIRFLAG__processing__shutdownTimeout: '2s' });
    const t0 = Date.now();
    child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code, child.output.slice(-3000)).toBe(4);
    // the deadline, not the 60 s hold, ended it
    expect(Date.now() - t0).toBeLessThan(30_000);
    const line = child.output.split('\n').find((l) => l.includes('shutdown deadline'));
    expect(line).toBeDefined();
    const record = JSON.parse(line!) as {
      timeoutMs: number;
      step: string;
      inFlight: { topic: string; firstOffset: string; messages: number; ageMs: number }[];
    };
    expect(record.timeoutMs).toBe(2000);
    expect(record.step).toBe('finishing in-flight batches and leaving the consumer group');
    expect(record.inFlight).toEqual([
      expect.objectContaining({
        topic: expect.stringMatching(/activity\.login$/),
        firstOffset: '0',
        messages: 1,
      }),
    ]);
    expect(record.inFlight[0]!.ageMs).toBeGreaterThanOrEqual(2000);
    expect(child.output).not.toContain('"msg":"stopped"');
  });

  it('exits at once on a second SIGTERM, well before the deadline', async () => {
    const child = await holding('shutdown-twice');
    child.kill('SIGTERM');
    await until('the stop to begin', () => child.output.includes('stopping: finishing in-flight batches'));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code, child.output.slice(-3000)).toBe(4);
    // the default deadline is 30 s and the batch is held for 60 s
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(child.output).toContain('second stop signal: exiting at once without finishing');
    expect(child.output).not.toContain('"msg":"stopped"');
  });
});
