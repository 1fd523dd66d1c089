// fairflag_consumer_lag_messages is measured on a timer for the whole group: a member that stops consuming
// (here SIGSTOPped) shows as growing lag on the member that still runs, and as none once it resumes.
import { afterAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/events.js';
import { startCli, type RunningCli } from '../faults/support/child.js';
import { Driver, until } from '../faults/support/driver.js';
import { accountsOn, isolatedEnv } from '../support/config.js';
import { endpoints } from '../support/endpoints.js';

let seq = 0;
const login = (accountId: string): ActivityEvent => ({
  family: 'login',
  event: {
    eventId: `lag-${++seq}`,
    accountId,
    occurredAt: Date.now() - 60_000,
    outcome: 'FAILURE',
    ip: '175.16.199.1',
    deviceId: null,
    sessionId: null,
  },
});

/** The partitions a child says it was given at its latest join. */
function partitionsOf(child: RunningCli): number[] | undefined {
  const joins = child.output.split('\n').filter((l) => l.includes('"msg":"joined consumer group"'));
  const last = joins[joins.length - 1];
  return last ? (JSON.parse(last) as { partitions: number[] }).partitions : undefined;
}

describe('consumer lag', () => {
  const children: RunningCli[] = [];
  let d: Driver | undefined;
  afterAll(async () => {
    for (const c of children) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
    await d?.close();
  });

  it('grows on a running member while another member of the group is stopped, and falls once it resumes', async () => {
    // a long session, so the stopped member keeps its partitions for the whole test
    const env = isolatedEnv('lag', endpoints(), 't', {
      FAIRFLAG__kafka__lagInterval: '1s',
      FAIRFLAG__kafka__sessionTimeout: '90s',
    });
    d = await new Driver(env).connect();
    const a = await startCli(env);
    children.push(a);
    await a.waitReady();
    const b = await startCli(env);
    children.push(b);
    await b.waitReady();
    await until('both members to share the partitions', () => {
      const pa = partitionsOf(a) ?? [];
      const pb = partitionsOf(b) ?? [];
      return pa.length > 0 && pb.length > 0 && pa.length + pb.length === 3;
    });
    const p = partitionsOf(b)![0]!;
    const topic = d.topics.login;
    const lagOnA = () => a.metric('fairflag_consumer_lag_messages', `topic="${topic}",partition="${p}"`);
    const accounts = accountsOn(p, 10, 'acct-lag');

    b.kill('SIGSTOP');
    await d.publish(accounts.slice(0, 4).map((acct) => ({ event: login(acct) })));
    await until(
      'the lag of the stopped member to show on the other',
      async () => (await lagOnA()) === 4,
      30_000,
    );
    await d.publish(accounts.slice(4).map((acct) => ({ event: login(acct) })));
    await until('the lag to grow', async () => (await lagOnA()) === 10, 30_000);
    // the running member did not take the partition over meanwhile
    expect(partitionsOf(a)).not.toContain(p);

    b.kill('SIGCONT');
    await until('the resumed member to catch up', async () => (await lagOnA()) === 0, 60_000);
  });
});
