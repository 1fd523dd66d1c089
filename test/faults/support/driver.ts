// Feeds a processor (in this process or a child `fairflag run`) on the fault stack and reads back
// what it did: committed offsets, flags, dead letters and feature keys; and computes the
// undisturbed reference for the same events with replay (the same code, its own namespace).
import { Redis } from 'ioredis';
import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import type { ReviewFlag } from '../../../src/domain/flags.js';
import { compilePolicy } from '../../../src/engine/policy.js';
import { COUNTED_ONLY, type EventKind, type FeatureLayout } from '../../../src/features/model.js';
import { describeAccount } from '../../../src/features/persisted.js';
import { Codec, topicOf } from '../../../src/kafka/codec.js';
import { Processor, consumedTopics, kafkaClient } from '../../../src/kafka/processor.js';
import { endOffsets, readRange, waitForCatchUp } from '../../../src/kafka/topic-tools.js';
import { loadConfig, type LoadedConfig } from '../../../src/runtime/config-loader.js';
import { createLogger, type Logger } from '../../../src/runtime/logger.js';
import { account } from '../../../src/scenarios/reference.js';
import { replay } from '../../../src/tools/replay.js';
import type { DeadLetterRecord } from '../../support/pipeline.js';
import { allEvents, type Planned, type Workload } from './workload.js';

export type { DeadLetterRecord };

/** A bad input message: where it goes, and the dead-letter reason (and detail) it must get. */
export interface BadMessage {
  name: string;
  topic: string;
  value: Buffer;
  key?: string | Buffer;
  reason: string;
  /** Sent to this partition (else the key's); a huge key must name one (murmur2 over it takes minutes). */
  partition?: number;
  /** More headers, after its x-bad. */
  headers?: Record<string, string | Buffer>;
}

export type Dump = Record<string, unknown>;

export function quietLogger(name = 'fairflag-fault', level = 'error'): Logger {
  const log = createLogger(name);
  log.level = process.env['FAIRFLAG_LOG_LEVEL'] ?? level;
  return log;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
  everyMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export class Driver {
  readonly loaded: LoadedConfig;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  readonly redis: Redis;
  codec!: Codec;

  constructor(
    readonly env: Record<string, string>,
    /** An environment config file merged over the defaults, as `run --config` would. */
    file?: string,
  ) {
    this.loaded = loadConfig({ env, file });
    this.kafka = kafkaClient(
      this.config.kafka,
      quietLogger('fairflag-fault-driver', 'fatal'),
      '-fault-driver',
    );
    this.admin = this.kafka.admin();
    // the platform's producers: idempotent, so a retried send never duplicates an event
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    this.redis = new Redis(this.config.redis.url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    this.redis.on('error', () => {}); // down on purpose at times; commands still fail loudly
  }

  get config() {
    return this.loaded.config;
  }
  get topics() {
    return this.config.topics;
  }
  get inputTopics(): string[] {
    return consumedTopics(this.topics);
  }

  /** Connects, registers the schemas and creates the topics (as the processor would). */
  async connect(): Promise<this> {
    const { ensureTopics } = await import('../../../src/kafka/processor.js');
    await Promise.all([this.admin.connect(), this.producer.connect(), this.redis.connect()]);
    this.codec = await Codec.connect(this.config);
    await ensureTopics(this.kafka, this.topics);
    return this;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
    this.redis.disconnect();
  }

  /** A processor in this process, quiet unless FAIRFLAG_LOG_LEVEL says otherwise. */
  startProcessor(log: Logger = quietLogger()): Promise<Processor> {
    return Processor.start({ loaded: this.loaded, log, http: false });
  }

  async encode(planned: Planned[]): Promise<Map<string, Message[]>> {
    const byTopic = new Map<string, Message[]>();
    for (const { event } of planned) {
      const topic = topicOf(event.family, this.topics);
      const value = await this.codec.encode(event.family, event.event);
      // keyed by account, placed by the default partitioner: the partition its owner reads
      const m: Message = { key: event.event.accountId, value };
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), m]);
    }
    return byTopic;
  }

  async send(byTopic: Map<string, Message[]>): Promise<void> {
    if (!byTopic.size) return;
    await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  }

  async publish(planned: Planned[]): Promise<void> {
    await this.send(await this.encode(planned));
  }

  /** Waits until the group has committed everything published so far. */
  async settle(timeoutMs = 120_000): Promise<void> {
    await waitForCatchUp(this.admin, this.config.kafka.groupId, this.inputTopics, timeoutMs);
  }

  /** The group's committed offsets, "topic/partition" -> next offset (0 if none). */
  async committed(): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>();
    const res = await this.admin.fetchOffsets({
      groupId: this.config.kafka.groupId,
      topics: this.inputTopics,
    });
    for (const { topic, partitions } of res)
      for (const p of partitions)
        out.set(`${topic}/${p.partition}`, p.offset === '-1' ? 0n : BigInt(p.offset));
    return out;
  }

  async totalCommitted(): Promise<bigint> {
    let n = 0n;
    for (const v of (await this.committed()).values()) n += v;
    return n;
  }

  async readAll(topic: string) {
    return readRange(this.kafka, topic, new Map(), await endOffsets(this.admin, topic), 60_000);
  }

  /** Every flag message on the flag topic, in topic order per partition. */
  async flagMessages(): Promise<ReviewFlag[]> {
    const messages = await this.readAll(this.topics.flags);
    return Promise.all(messages.map(async (m) => (await this.codec.decodeAny(m.value!)) as ReviewFlag));
  }

  async deadLetters(): Promise<DeadLetterRecord[]> {
    const messages = await this.readAll(this.topics.deadLetter);
    return Promise.all(messages.map(async (m) => (await this.codec.decodeAny(m.value!)) as DeadLetterRecord));
  }

  /** The live feature keys of this test's prefix, normalised (see normalizeDump). */
  async dump(prefix = this.config.redis.keyPrefix): Promise<Dump> {
    return dumpNamespace(this.redis, prefix);
  }

  /**
   * Publishes the workload: the phases before the stream (each consumed before the next), the
   * stream in chunks (with the bad messages spread through it) while `during` runs, then the
   * phases after it. `during` injects the fault; the stream waits while it is paused.
   */
  async run(w: Workload, opts: RunOptions = {}): Promise<void> {
    for (const phase of w.before) {
      await this.publish(phase);
      await this.settle(opts.settleTimeoutMs);
    }
    const stream = new StreamPublisher(this, w.stream, opts.bad ?? [], opts.chunk ?? 150, opts.gapMs ?? 250);
    const publishing = stream.run();
    try {
      await opts.during?.(stream);
    } finally {
      stream.resume();
    }
    await publishing;
    await this.settle(opts.settleTimeoutMs ?? 180_000);
    for (const phase of w.after) {
      await this.publish(phase);
      await this.settle(opts.settleTimeoutMs);
    }
  }
}

export interface RunOptions {
  bad?: BadMessage[];
  chunk?: number;
  gapMs?: number;
  settleTimeoutMs?: number;
  during?: (stream: StreamPublisher) => Promise<void>;
}

/** Publishes the stream chunk by chunk; the fault scenario can wait for progress and pause it. */
export class StreamPublisher {
  published = 0;
  private paused: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private readonly chunks: { planned: Planned[]; bad: BadMessage[] }[] = [];

  constructor(
    private readonly d: Driver,
    stream: Planned[],
    bad: BadMessage[],
    chunk: number,
    private readonly gapMs: number,
  ) {
    for (let i = 0; i < stream.length; i += chunk)
      this.chunks.push({ planned: stream.slice(i, i + chunk), bad: [] });
    // spread the bad messages over the chunks, so good events come before and after each
    bad.forEach((m, i) => this.chunks[(i * 7 + 1) % this.chunks.length]!.bad.push(m));
  }

  get total(): number {
    return this.chunks.reduce((n, c) => n + c.planned.length + c.bad.length, 0);
  }

  async run(): Promise<void> {
    for (const { planned, bad } of this.chunks) {
      if (this.published >= this.holdFrom) this.pause();
      await this.paused;
      const byTopic = await this.d.encode(planned);
      for (const m of bad) {
        const half = Math.floor((byTopic.get(m.topic)?.length ?? 0) / 2);
        const list = byTopic.get(m.topic) ?? [];
        list.splice(half, 0, {
          key: m.key ?? `bad-${m.name}`,
          value: m.value,
          headers: { 'x-bad': m.name, ...m.headers },
          ...(m.partition === undefined ? {} : { partition: m.partition }),
        });
        byTopic.set(m.topic, list);
      }
      await this.d.send(byTopic);
      this.published += planned.length + bad.length;
      await sleep(this.gapMs);
    }
  }

  /** Resolves once at least this share of the stream is on the topics. */
  async reached(share: number, timeoutMs = 120_000): Promise<void> {
    await until(
      `${share * 100}% of the stream published`,
      () => this.published >= share * this.total,
      timeoutMs,
      50,
    );
  }

  pause(): void {
    this.paused ??= new Promise((r) => (this.release = r));
  }

  /** Goes on (from a pause or a hold) without a hold. */
  resume(): void {
    this.holdFrom = Infinity;
    this.release?.();
    this.paused = undefined;
    this.release = undefined;
  }

  private holdFrom = Infinity;

  /**
   * Goes on, then waits once this share of the stream is published: a scenario paced by its own
   * steps (a rebalance takes seconds) must not find the stream over before it is done, however
   * fast the processors sharing this process let the publisher run.
   */
  holdAt(share: number): void {
    this.resume();
    this.holdFrom = share * this.total;
  }
}

/** Every key of a namespace with its contents, normalised for comparing two runs (unless raw). */
export async function dumpNamespace(
  redis: Redis,
  prefix: string,
  raw = false,
  layout: FeatureLayout = compilePolicy(loadConfig({ env: {} })).layout,
): Promise<Dump> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out: Dump = {};
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    const name = key.slice(prefix.length + 1);
    if (type === 'zset') out[name] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'hash') out[name] = await redis.hgetall(key);
    else {
      const record = describeAccount((await redis.getBuffer(key))!, layout);
      out[name] = raw ? record : normalizeAccount(record);
    }
  }
  return out;
}

/**
 * Signal memory (observations) is left out: it is derived from the features and may hold a
 * different but equivalent observation when the same events arrive in another order. An open
 * flag is compared by what a reviewer sees of it: id, severity and signals.
 */
function normalizeAccount(record: Record<string, unknown>): Record<string, unknown> {
  const flags = record['openFlags'] as {
    queue: string;
    flagId: string;
    severity: string;
    signals: { signalId: string }[];
  }[];
  return {
    ...record,
    observations: undefined,
    // markers of when a cap was reached carry the time of the event that reached it
    capsReached: Object.keys(record['capsReached'] as object),
    openFlags: flags.map(
      (f) =>
        `${f.queue} ${f.flagId} ${f.severity} ${f.signals
          .map((s) => s.signalId)
          .sort()
          .join(',')}`,
    ),
  };
}

/** Whether a dumped account (see dumpNamespace) holds an event id in a kind's set. */
function holdsEvent(entry: unknown, kind: EventKind, id: string): boolean {
  const events = (entry as { events?: Record<string, Record<string, number>> } | undefined)?.events;
  return events?.[kind]?.[id] !== undefined;
}

/** What two dumps disagree on, key by key (at most `max` lines). */
export function diffDumps(live: Dump, reference: Dump, max = 20): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(live), ...Object.keys(reference)])].sort();
  for (const k of keys) {
    const a = JSON.stringify(live[k]);
    const b = JSON.stringify(reference[k]);
    if (a !== b)
      out.push(`${k}: live ${a?.slice(0, 300) ?? 'missing'} | reference ${b?.slice(0, 300) ?? 'missing'}`);
    if (out.length >= max) break;
  }
  return out;
}

/** A flag as compared: its id, account, queue, severity and signal ids. */
export function flagEssence(f: ReviewFlag): string {
  return `${f.flagId} ${f.accountId} ${f.reviewQueue} ${f.severity} ${f.signals
    .map((s) => s.id)
    .sort()
    .join(',')}`;
}

/** The last revision of every flag id, by essence, sorted. */
export function finalFlags(flags: ReviewFlag[]): string[] {
  const last = new Map<string, ReviewFlag>();
  for (const f of flags) {
    const cur = last.get(f.flagId);
    if (!cur || f.revision >= cur.revision) last.set(f.flagId, f);
  }
  return [...last.values()].map(flagEssence).sort();
}

/**
 * Flag messages with the same id and revision (a batch replayed after a crash or a rebalance
 * re-emits what it had produced): `conflicting` lists those that are not the same flag (queue,
 * severity, signals, action or account differ); `detailOnly` those that are the same flag with
 * other explanation details (score, observed values, evidence, summaries), naming the fields.
 */
export function duplicateFlags(flags: ReviewFlag[]): {
  repeated: number;
  conflicting: string[];
  detailOnly: string[];
} {
  const seen = new Map<string, ReviewFlag>();
  const out = { repeated: 0, conflicting: [] as string[], detailOnly: [] as string[] };
  const essence = (f: ReviewFlag) => `${f.accountId} ${f.action} ${flagEssence(f)}`;
  for (const f of flags) {
    const k = `${f.flagId}#${f.revision}`;
    const prev = seen.get(k);
    seen.set(k, f);
    if (!prev) continue;
    out.repeated++;
    if (essence(prev) !== essence(f)) out.conflicting.push(`${k}: ${essence(prev)} != ${essence(f)}`);
    else if (JSON.stringify(prev) !== JSON.stringify(f)) {
      const a = prev as unknown as Record<string, unknown>;
      const b = f as unknown as Record<string, unknown>;
      const fields = Object.keys(b).filter((x) => JSON.stringify(a[x]) !== JSON.stringify(b[x]));
      out.detailOnly.push(`${k}: ${fields.join(',')} (score ${prev.score} vs ${f.score})`);
    }
  }
  return out;
}

export interface Reference {
  dump: Dump;
  flags: string[];
  accepted: number;
  flagMessages: number;
}

/**
 * The undisturbed reference: the same events through replay (production's engine and feature
 * store) in a namespace of its own, in the order the workload was published.
 */
export async function reference(loaded: LoadedConfig, w: Workload, redis: Redis): Promise<Reference> {
  const items = allEvents(w).map(({ event }, i) => ({
    where: `#${i}`,
    family: event.family,
    record: event.event,
  }));
  const r = await replay({ loaded, items, keep: true });
  try {
    if (r.rejected.length)
      throw new Error(`reference rejected events: ${JSON.stringify(r.rejected.slice(0, 3))}`);
    return {
      dump: await dumpNamespace(redis, r.namespace),
      flags: [...r.finalFlags.values()].map(flagEssence).sort(),
      accepted: r.accepted,
      flagMessages: r.flags.length,
    };
  } finally {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${r.namespace}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    if (keys.length) await redis.unlink(...keys);
  }
}

export interface Outcome {
  events: number;
  featureKeys: number;
  featuresEqual: boolean;
  flags: number;
  flagsEqual: boolean;
  flagMessages: number;
  deadLetters: number;
  deadLetterMessages: number;
}

/** Compares the live run with the reference and prints one line for the report. */
export async function compare(
  label: string,
  d: Driver,
  w: Workload,
  ref: Reference,
  bad: BadMessage[],
): Promise<{
  outcome: Outcome;
  featureDiff: string[];
  live: string[];
  flags: ReviewFlag[];
  dead: DeadLetterRecord[];
}> {
  const [dump, flags, dead] = await Promise.all([d.dump(), d.flagMessages(), d.deadLetters()]);
  const featureDiff = diffDumps(dump, ref.dump);
  const live = finalFlags(flags);
  const distinctDead = new Set(dead.map((x) => `${x.sourceTopic}/${x.sourcePartition}@${x.sourceOffset}`));
  const outcome: Outcome = {
    events: allEvents(w).length + bad.length,
    featureKeys: Object.keys(dump).length,
    featuresEqual: featureDiff.length === 0,
    flags: live.length,
    flagsEqual: JSON.stringify(live) === JSON.stringify(ref.flags),
    flagMessages: flags.length,
    deadLetters: distinctDead.size,
    deadLetterMessages: dead.length,
  };
  console.log(`[fault outcome] ${label}: ${JSON.stringify(outcome)}`);
  return { outcome, featureDiff, live, flags, dead };
}

/** A few bad messages for the stream: on each activity topic, random bytes, an unknown schema id and a bad IP. */
export async function streamBadMessages(d: Driver, tag: string): Promise<BadMessage[]> {
  const t = d.topics;
  const out: BadMessage[] = [];
  const frame = (id: number, body: Buffer) => {
    const h = Buffer.alloc(5);
    h.writeInt32BE(id, 1);
    return Buffer.concat([h, body]);
  };
  const login = await d.codec.encode('login', {
    eventId: `bad-${tag}-login`,
    accountId: `acct-bad-${tag}`,
    occurredAt: Date.now() - 60_000,
    outcome: 'SUCCESS',
    ip: '999.1.1.1',
    deviceId: null,
    sessionId: null,
  });
  for (const topic of [t.login, t.ip, t.paymentMethod, t.contract, t.account]) {
    out.push({
      name: `${topic}:bytes`,
      topic,
      value: Buffer.from([0x13, 0x37, 0xbe, 0xef, 1, 2, 3]),
      reason: 'not_wire_format',
    });
    out.push({
      name: `${topic}:unknown-id`,
      topic,
      value: frame(987_650, Buffer.from('xx')),
      reason: 'unknown_schema_id',
    });
    out.push({
      name: `${topic}:other-type`,
      topic,
      value:
        topic === t.login
          ? await d.codec.encode(
              'account',
              account({ next: () => `bad-${tag}-acct` }, `acct-bad-${tag}`, Date.now() - 60_000, {}).event,
            )
          : login,
      reason: 'wrong_schema',
    });
  }
  return out;
}

/**
 * For an input message, the feature it must have left if it was processed: the account (its key
 * without the prefix) and the event id in one of its event sets. Undefined for events recorded
 * otherwise, and for kinds the state only counts (it keeps a digest of their ids, see COUNTED_ONLY).
 */
export function traceOf(
  family: string,
  record: Record<string, unknown>,
): { key: string; kind: EventKind; member: string } | undefined {
  const id = String(record['eventId']);
  const at = (a: unknown, kind: EventKind) =>
    COUNTED_ONLY.has(kind) ? undefined : { key: `{a:${String(a)}}`, kind, member: id };
  const { outcome, action, accountId, freelancerAccountId } = record;
  if (family === 'login')
    return outcome === 'FAILURE'
      ? at(accountId, 'loginFailed')
      : outcome === 'SUCCESS'
        ? at(accountId, 'session')
        : undefined;
  if (family === 'ip') return at(accountId, 'session');
  if (family === 'payment')
    return action === 'ADDED'
      ? at(accountId, 'methodAdded')
      : action === 'VERIFICATION_FAILED'
        ? at(accountId, 'verificationFailed')
        : undefined;
  // a freelancer's payments and disputes acted by the client reach the freelancer's state through
  // the counterpart topic: the contract topic's commit says nothing about them
  if (family === 'contract' && freelancerAccountId === accountId)
    return action === 'MILESTONE_PAID'
      ? at(freelancerAccountId, 'milestonePaid')
      : action === 'DISPUTED'
        ? at(freelancerAccountId, 'dispute')
        : undefined;
  return undefined;
}

/**
 * Input messages with offsets in [from, to) per partition ("topic/partition" keys, as committed()
 * gives them) whose trace (see traceOf) is in the reference's final features: how many of them
 * left it in the live state now, and which did not.
 */
export async function traces(
  d: Driver,
  to: Map<string, bigint>,
  ref: Dump,
  from: Map<string, bigint> = new Map(),
): Promise<{ checked: number; written: number; missing: string[] }> {
  const families: [string, string][] = [
    ['login', d.topics.login],
    ['ip', d.topics.ip],
    ['payment', d.topics.paymentMethod],
    ['contract', d.topics.contract],
  ];
  let checked = 0;
  let written = 0;
  const missing: string[] = [];
  const live = await d.dump();
  const forTopic = (m: Map<string, bigint>, topic: string) => {
    const out = new Map<number, bigint>();
    for (const [tp, off] of m) {
      const i = tp.lastIndexOf('/');
      if (tp.slice(0, i) === topic) out.set(Number(tp.slice(i + 1)), off);
    }
    return out;
  };
  for (const [family, topic] of families) {
    for (const m of await readRange(d.kafka, topic, forTopic(from, topic), forTopic(to, topic), 60_000)) {
      let record: Record<string, unknown>;
      try {
        record = (await d.codec.decodeAs(family as 'login', m.value!)) as Record<string, unknown>;
      } catch {
        continue; // a bad message: dead-lettered, not a feature
      }
      const trace = traceOf(family, record);
      if (!trace || !holdsEvent(ref[trace.key], trace.kind, trace.member)) continue;
      checked++;
      if (!holdsEvent(live[trace.key], trace.kind, trace.member))
        missing.push(`${topic}/${m.partition}@${m.offset} ${trace.key} ${trace.kind} ${trace.member}`);
      else written++;
    }
  }
  return { checked, written, missing };
}

/** The end offsets of the input topics, keyed like committed(). */
export async function inputEnds(d: Driver): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (const t of d.inputTopics)
    for (const [p, end] of await endOffsets(d.admin, t)) out.set(`${t}/${p}`, end);
  return out;
}
