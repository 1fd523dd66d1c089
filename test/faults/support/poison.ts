// For the poison-pill tests (issue 17): a round of good events on every input topic and partition,
// the check that all of them were processed, and a watch on a child processor's event loop.
import type { Message } from 'kafkajs';
import type { ActivityEvent } from '../../../src/domain/events.js';
import { topicOf } from '../../../src/kafka/codec.js';
import * as events from '../../../src/scenarios/reference.js';
import { accountsOn } from '../../support/config.js';
import type { RunningCli } from './child.js';
import type { Driver } from './driver.js';

export interface GoodRound {
  /** Accounts whose state must exist once the round is processed (one per activity topic and partition). */
  accounts: string[];
  /** Review outcomes sent (one per partition). */
  outcomes: number;
  /** Counterpart records its contract events make (consumed too: one per partition). */
  counterparts: number;
  messages: number;
}

/**
 * One good event on every activity topic and partition, and a review outcome per partition, each
 * keyed by an account of its partition (a fresh account each: its state appears only if processed).
 */
export async function goodRound(d: Driver, tag: string, partitions = 3): Promise<GoodRound> {
  let n = 0;
  const ids = { next: () => `ev-good-${tag}-${++n}` };
  const at = Date.now() - 60_000;
  const byTopic = new Map<string, Message[]>();
  const put = (topic: string, key: string, partition: number, value: Buffer) =>
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), { key, value, partition }]);
  const round: GoodRound = { accounts: [], outcomes: 0, counterparts: partitions, messages: 0 };
  for (let p = 0; p < partitions; p++) {
    const [a1, a2, a3, a4, a5, a6] = accountsOn(p, 6, `acct-good-${tag}-p${p}`, partitions) as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const planned: ActivityEvent[] = [
      events.login(ids, a1, at, '81.2.69.160', { deviceId: `dev-${tag}-${p}` }),
      events.ipObservation(ids, a2, at, '89.160.20.112'),
      events.payment(ids, a3, at, { instrumentFingerprint: `fp-${tag}-${p}` }),
      events.contract(ids, at, {
        accountId: a4,
        contractId: `ctr-${tag}-${p}`,
        clientAccountId: a4,
        freelancerAccountId: `acct-good-${tag}-free-${p}`,
        action: 'STARTED',
      }),
      events.account(ids, a5, at, { action: 'STATS_UPDATED', lifetimeCompletedContracts: 2 }),
    ];
    for (const e of planned) {
      put(topicOf(e.family, d.topics), e.event.accountId, p, await d.codec.encode(e.family, e.event));
      round.accounts.push(e.event.accountId);
    }
    const outcome = {
      outcomeId: `out-${tag}-${p}`,
      flagId: `ff-${'0'.repeat(32)}`,
      accountId: a6,
      outcome: 'CLEARED',
      noteCategory: null,
      decidedAt: at,
    };
    put(d.topics.reviewOutcomes, a6, p, await d.codec.encode('reviewOutcome', outcome));
    round.outcomes++;
  }
  round.messages = [...byTopic.values()].reduce((k, m) => k + m.length, 0);
  await d.send(byTopic);
  return round;
}

/** The accounts of a round that have no state in Redis (so were not processed). */
export async function unprocessed(d: Driver, round: GoodRound): Promise<string[]> {
  const prefix = d.config.redis.keyPrefix;
  const out: string[] = [];
  for (const a of round.accounts) if (!(await d.redis.exists(`${prefix}:{a:${a}}`))) out.push(a);
  return out;
}

/** A metric's value from Prometheus text, summed over the lines whose labels contain `filter`. */
export function metricValue(text: string, name: string, filter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `)) || !line.includes(filter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Scrapes a child processor's /metrics every `everyMs` and keeps the longest event-loop hold it
 * reports: `busyMax`, the event loop's own CPU time while a timer was late (its work, GC
 * included; fairflag_event_loop_busy_max_seconds), and `lagMax`, the wall-clock delay
 * (nodejs_eventloop_lag_max_seconds), which also counts a busy host not running it.
 * Both are reset on each scrape, so the maximum over the scrapes is the maximum over the watch.
 */
export class LoopWatch {
  busyMax = 0;
  lagMax = 0;
  samples = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly child: RunningCli,
    private readonly everyMs = 100,
  ) {}

  async scrape(): Promise<string> {
    const text = (await (await this.child.get('/metrics'))?.text()) ?? '';
    if (text) {
      this.samples++;
      this.busyMax = Math.max(this.busyMax, metricValue(text, 'fairflag_event_loop_busy_max_seconds') * 1000);
      this.lagMax = Math.max(this.lagMax, metricValue(text, 'nodejs_eventloop_lag_max_seconds') * 1000);
    }
    return text;
  }

  start(): this {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      void this.scrape().finally(() => (this.busy = false));
    }, this.everyMs);
    return this;
  }

  /** Forget the maxima so far (start-up compiles, connects and registers: not a message's doing). */
  async reset(): Promise<void> {
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await this.scrape();
    this.busyMax = 0;
    this.lagMax = 0;
    this.samples = 0;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
