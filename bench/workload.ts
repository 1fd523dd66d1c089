// A marketplace-like event stream for the pipeline benchmark: most accounts quiet, a few hot,
// some behind anonymizers, some sharing an address or a card, contracts between members. IPs are
// drawn from the networks MaxMind's test databases know, so enrichment and geo signals do real work.
import type { Producer } from 'kafkajs';
import type { Config } from '../config/schema.js';
import type { ActivityEvent } from '../src/domain/events.js';
import { topicOf, type Codec } from '../src/kafka/codec.js';

export interface WorkloadOptions {
  accounts: number;
  events: number;
  /** Event time of the first and the last event. */
  from: number;
  to: number;
  seed: number;
}

/** A small seeded generator (mulberry32): the same options give the same stream. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Networks with a location in GeoIP2-City-Test (and the ASN test data where it has them), weighted
// by how many addresses they have; small ones become addresses many members share.
const HOME_NETWORKS: { base: string; size: number; weight: number }[] = [
  { base: '214.78.', size: 8192, weight: 60 }, // San Diego, US (/19)
  { base: '214.0.1.', size: 256, weight: 12 }, // Melbourne, AU
  { base: '214.0.0.', size: 256, weight: 10 }, // Singapore
  { base: '175.16.199.', size: 256, weight: 8 }, // Changchun, CN
  { base: '89.160.20.', size: 128, weight: 6 }, // Linköping, SE (.128/25)
  { base: '216.160.83.', size: 8, weight: 2 }, // Milton, US
  { base: '2.125.160.', size: 8, weight: 2 }, // Boxford, GB
];

function address(net: (typeof HOME_NETWORKS)[number], n: number): string {
  if (net.base === '214.78.') return `214.78.${Math.floor(n / 256) % 32}.${n % 256}`;
  if (net.base === '89.160.20.') return `89.160.20.${128 + (n % 128)}`;
  if (net.base === '216.160.83.') return `216.160.83.${56 + (n % 8)}`;
  if (net.base === '2.125.160.') return `2.125.160.${216 + (n % 8)}`;
  return `${net.base}${n % 256}`;
}

/** The account id of member `i` (the same in every seed). */
export const memberId = (i: number) => `acct-${String(i).padStart(7, '0')}`;

/**
 * One account event (a stats update, no IP or device) for each of the first `accounts` members,
 * at event time `at`: touches every one of them once, cheaply (the pipeline benchmark uses it to
 * bring a set of accounts into a processor's memory).
 */
export function* touchEach(accounts: number, at: number): Generator<ActivityEvent> {
  for (let i = 0; i < accounts; i++) {
    yield {
      family: 'account',
      event: {
        eventId: `touch-${at}-${i.toString(36)}`,
        accountId: memberId(i),
        occurredAt: at,
        action: 'STATS_UPDATED',
        accountType: null,
        // no figures: the touch changes no context a mitigation reads
        lifetimeCompletedContracts: null,
        lifetimePaidHours: null,
        lifetimeEarnings: null,
        ip: null,
        deviceId: null,
      },
    };
  }
}

interface Member {
  id: string;
  home: string;
  devices: string[];
  anonymizer: boolean;
  hot: boolean;
  card: string;
}

/** Yields events in event-time order. */
export function* workload(o: WorkloadOptions): Generator<ActivityEvent> {
  const rand = seeded(o.seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const totalWeight = HOME_NETWORKS.reduce((t, n) => t + n.weight, 0);
  const network = () => {
    let r = rand() * totalWeight;
    for (const n of HOME_NETWORKS) if ((r -= n.weight) <= 0) return n;
    return HOME_NETWORKS[0]!;
  };
  const sharedCards: string[] = [];
  const members: Member[] = Array.from({ length: o.accounts }, (_, i) => {
    const net = network();
    let card = `fp-${i.toString(36)}-${Math.floor(rand() * 1e9).toString(36)}`;
    if (rand() < 0.005) {
      if (sharedCards.length && rand() < 0.7) card = pick(sharedCards);
      else sharedCards.push(card);
    }
    return {
      id: memberId(i),
      home: address(net, Math.floor(rand() * net.size)),
      devices: Array.from({ length: 1 + Math.floor(rand() * 3) }, (_, d) => `dev-${i.toString(36)}-${d}`),
      anonymizer: rand() < 0.04,
      hot: rand() < 0.02,
      card,
    };
  });
  // hot members act ten times as often
  const activity = members.flatMap((m) => (m.hot ? Array(10).fill(m) : [m])) as Member[];
  const span = o.to - o.from;
  let n = 0;
  const eventId = () => `ev-${o.seed}-${(n++).toString(36)}`;
  const base = (m: Member, at: number) => ({ eventId: eventId(), accountId: m.id, occurredAt: at });
  const ipOf = (m: Member) =>
    m.anonymizer && rand() < 0.8
      ? rand() < 0.85
        ? `1.2.${Math.floor(rand() * 32)}.${1 + Math.floor(rand() * 254)}`
        : `65.0.${Math.floor(rand() * 4)}.${1 + Math.floor(rand() * 254)}`
      : rand() < 0.9
        ? m.home
        : address(network(), Math.floor(rand() * 8192));

  for (let i = 0; i < o.events; i++) {
    const at = o.from + Math.floor((i / o.events) * span);
    const m = pick(activity);
    const r = rand();
    if (r < 0.45) {
      yield {
        family: 'login',
        event: {
          ...base(m, at),
          outcome: 'SUCCESS',
          ip: ipOf(m),
          deviceId: pick(m.devices),
          sessionId: `s-${n.toString(36)}`,
        },
      };
    } else if (r < 0.5) {
      // failed logins; a hot member's come in bursts from one foreign address
      const burst = m.hot ? 6 : 1;
      const ip = `175.16.199.${Math.floor(rand() * 256)}`;
      for (let b = 0; b < burst && i < o.events; b++, i++) {
        yield {
          family: 'login',
          event: { ...base(m, at), outcome: 'FAILURE', ip, deviceId: null, sessionId: null },
        };
      }
    } else if (r < 0.85) {
      yield {
        family: 'ip',
        event: {
          ...base(m, at),
          ip: ipOf(m),
          source: pick(['web', 'api', 'messaging']),
          deviceId: pick(m.devices),
          sessionId: null,
        },
      };
    } else if (r < 0.88) {
      yield {
        family: 'payment',
        event: {
          ...base(m, at),
          action: rand() < 0.7 ? 'ADDED' : rand() < 0.5 ? 'VERIFICATION_SUCCEEDED' : 'VERIFICATION_FAILED',
          methodId: `pm-${Math.floor(rand() * 3)}`,
          methodType: 'CARD',
          instrumentFingerprint: m.card,
          ip: ipOf(m),
          deviceId: pick(m.devices),
        },
      };
    } else if (r < 0.98) {
      const client = pick(members);
      if (client.id === m.id) continue;
      const action = pick(['STARTED', 'MILESTONE_PAID', 'MILESTONE_PAID', 'ENDED', 'DISPUTED'] as const);
      yield {
        family: 'contract',
        event: {
          ...base(client, at),
          contractId: `ctr-${client.id}-${m.id}`,
          clientAccountId: client.id,
          freelancerAccountId: m.id,
          action,
          amount: action === 'MILESTONE_PAID' ? Math.round(rand() * 2000) : null,
          currency: action === 'MILESTONE_PAID' ? 'USD' : null,
          rating: action === 'ENDED' ? 1 + Math.floor(rand() * 5) : null,
          disputeReason: action === 'DISPUTED' ? pick(['NON_DELIVERY', 'QUALITY', 'SCOPE'] as const) : null,
          ip: null,
          deviceId: null,
        },
      };
    } else {
      yield {
        family: 'account',
        event: {
          ...base(m, at),
          action: rand() < 0.5 ? 'STATS_UPDATED' : 'IDENTITY_VERIFIED',
          accountType: 'FREELANCER',
          lifetimeCompletedContracts: Math.floor(rand() * 50),
          lifetimePaidHours: Math.floor(rand() * 3000),
          lifetimeEarnings: Math.floor(rand() * 100_000),
          ip: null,
          deviceId: null,
        },
      };
    }
  }
}

export interface EventSink {
  producer: Producer;
  codec: Codec;
  topics: Config['topics'];
}

/**
 * Produces events in the registry's wire format, keyed by account, `chunk` at a time (acks from
 * all replicas). `each` sees every event first; `sent` sees it with its produce time, which the
 * processor reads back from the message (CreateTime).
 */
export async function produceEvents(
  sink: EventSink,
  events: Iterable<ActivityEvent>,
  opts: {
    chunk?: number;
    each?: (e: ActivityEvent) => void;
    sent?: (e: ActivityEvent, at: number) => void;
    /** Once per produce request, before it is sent: its events and their produce time. */
    beforeSend?: (events: readonly ActivityEvent[], at: number) => void;
  } = {},
): Promise<number> {
  const chunk = opts.chunk ?? 2000;
  let batch: ActivityEvent[] = [];
  let count = 0;
  const flush = async () => {
    const byTopic = new Map<string, { key: string; value: Buffer; timestamp: string }[]>();
    const encoded = await Promise.all(batch.map((e) => sink.codec.encode(e.family, e.event)));
    const at = Date.now();
    batch.forEach((e, i) => {
      const t = topicOf(e.family, sink.topics);
      let list = byTopic.get(t);
      if (!list) byTopic.set(t, (list = []));
      list.push({ key: e.event.accountId, value: encoded[i]!, timestamp: String(at) });
      opts.sent?.(e, at);
    });
    opts.beforeSend?.(batch, at);
    await sink.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    count += batch.length;
    batch = [];
  };
  for (const e of events) {
    opts.each?.(e);
    batch.push(e);
    if (batch.length >= chunk) await flush();
  }
  if (batch.length) await flush();
  return count;
}
