// The live pipeline: a Kafka consumer group over the input topics, one round at a time per
// partition (the batches of its topics that one fetch brought, rounds.ts): decode -> enrich ->
// features -> signals -> flags; then produce flags and dead letters, write the state, and only
// then commit the batches' offsets.
import type { Server } from 'node:http';
import { Cluster, Redis } from 'ioredis';
import DataLoader from 'dataloader';
import { backOff } from 'exponential-backoff';
import { LRUCache } from 'lru-cache';
import {
  Partitioners,
  type Admin,
  type Kafka,
  type Batch,
  type ConfigResourceTypes,
  type Consumer,
  type EachBatchPayload,
  type KafkaMessage,
  type Message,
  type PartitionMetadata,
  type Producer,
} from 'kafkajs';
import type { Config } from '../../config/schema.js';
import type { Family } from '../domain/events.js';
import { GeoIp } from '../enrich/geoip.js';
import { decodeCounterpart, encodeCounterpart, sourceEventId } from '../engine/counterparts.js';
import { Engine, type BatchResult, type EngineInput } from '../engine/engine.js';
import { compilePolicy, type Policy } from '../engine/policy.js';
import type { AccountFeatures } from '../features/account-features.js';
import { OwnedAccounts, readStoredAccount } from '../features/owned-accounts.js';
import { RedisStateBackend } from '../features/state-backend.js';
import { ingest, type DeadLetterReason } from '../ingest/ingest.js';
import { validateOutcome } from '../ingest/validate.js';
import { ConfigError, loadConfig, type LoadedConfig, type LoadOptions } from '../runtime/config-loader.js';
import { startOnlyChanges } from '../runtime/reload-guard.js';
import { startHealthServer, readiness, type ReadinessCheck } from '../runtime/health.js';
import type { Logger } from '../runtime/logger.js';
import { createMetrics, retryCause, setConfigInfo, type Metrics } from '../runtime/metrics.js';
import { PROCESSOR_VERSION } from '../runtime/project.js';
import { redactUrl } from '../runtime/secrets.js';
import { Codec, type SchemaRole } from './codec.js';
import { checkKafkaConnection, kafkaClient } from './connection.js';
import { groupLag } from './group-lag.js';
import { InFlight } from './in-flight.js';
import { registryGet } from './registry-http.js';
import { shadowPolicy, type ShadowPolicy } from '../engine/shadow.js';
import {
  chunkBySize,
  headerTotals,
  messageSize,
  minimalDeadLetter,
  shapeDeadLetter,
  type DeadLetter,
  type ShapedDeadLetter,
} from './dead-letters.js';
import { deadLetteredSince, intentMetadata, readIntent, type Intent } from './dead-letter-ledger.js';
import { describeError, judge, messageFailure } from './failure.js';
import { coPartitionedAssigner, commonPartitionCount } from './co-partitioned-assigner.js';
import { shareOut, type BatchShare } from './rounds.js';

export interface ProcessorOptions {
  loaded: LoadedConfig;
  /** How to load the config again on reload (same file and environment). */
  reloadWith?: LoadOptions;
  log: Logger;
  /** Serve /livez, /readyz, /metrics; default true. */
  http?: boolean;
  /**
   * Told once when the processor cannot go on by itself (the consumer crashed for good, a batch
   * is stuck): /livez fails from then on; `run` stops and exits non-zero.
   */
  onFatal?: (reason: string) => void;
  /**
   * Refuse MaxMind test databases unless maxmind.allowTestDatabases (what `run` asks); default
   * false, for the tools, tests and benchmarks that start a processor in-process.
   */
  refuseTestDatabases?: boolean;
  /** Called after each batch's effects are written: for the benchmark's exact latencies. */
  onBatchWritten?: (b: BatchTiming) => void;
}

export interface BatchTiming {
  /** When the batch's processing began (performance.now(); the start of a throughput window). */
  startedAt: number;
  /** The same instant as startedAt in epoch ms, comparable with the produce times. */
  begunAt: number;
  /** Produce times of the batch's good events. */
  producedAt: number[];
  /** When their features were written. */
  featuresWrittenAt: number;
  /** For each flag: the produce time of the event that triggered it, and when the flag was on the topic. */
  flags: { triggeredAt: number; producedAt: number }[];
}

export function connectRedis(cfg: Config['redis']): Redis | Cluster {
  // Commands fail at once while Redis is down (no offline queue): the batch is retried with
  // backoff and nothing is committed, instead of piling up in memory.
  //
  // Auto-pipelining: ioredis keeps one auto-pipeline in flight per connection and answers none of
  // its commands before the last, so Redis and the processor took turns idling (event loop 65%
  // busy, Redis half). On one Redis, commands are written as they are made instead: one
  // connection, so they run in call order (an account's events stay in order), and each answer
  // comes when ready: +40% events/s side by side. A Cluster keeps auto-pipelining: without it,
  // script calls to a node whose connection was just opened ran out of call order (seen with
  // ioredis 5.11 on a fresh client, and as an event judged late in the scale-out test).
  const common = {
    enableAutoPipelining: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  };
  if (cfg.clusterNodes.length) {
    return new Cluster(
      cfg.clusterNodes.map((n) => {
        const [host, port] = n.split(':');
        return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
      }),
      {
        enableAutoPipelining: true,
        enableOfflineQueue: false,
        lazyConnect: true,
        redisOptions: { maxRetriesPerRequest: 1 },
      },
    );
  }
  return new Redis(cfg.url, common);
}

// made in connection.ts, with every client's TLS and SASL settings; exported here for the tools
export { kafkaClient };

/** The topics a processor consumes: partition p of each is owned by one member (co-partitioned). */
export function consumedTopics(t: Config['topics']): string[] {
  return [t.login, t.ip, t.paymentMethod, t.contract, t.account, t.reviewOutcomes, t.counterparts];
}

/**
 * Creates the topics fairflag reads and writes, if missing, and returns the partition count they
 * share. Refuses (PartitionCountMismatchError) consumed topics whose partition counts differ: an
 * account's events must all reach the one member that owns it.
 */
export async function ensureTopics(kafka: Kafka, topics: Config['topics']): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const consumed = consumedTopics(topics);
    const names = [...consumed, topics.flags, topics.deadLetter, topics.shadowFlags];
    const missing = names.filter((t) => !existing.has(t));
    if (missing.length) {
      // new topics get the partition count the existing consumed topics share, if any
      const have = consumed.filter((t) => existing.has(t));
      const counts = have.length ? await partitionCounts(admin, have) : new Map<string, number>();
      const partitions = counts.size ? Math.max(...counts.values()) : topics.partitions;
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: partitions,
          replicationFactor: topics.replicationFactor,
          // the largest input must still fit, with its record, into the dead-letter topic
          configEntries: [
            {
              name: 'max.message.bytes',
              value: String(
                topic === topics.deadLetter
                  ? topics.maxMessageBytes + DEAD_LETTER_HEADROOM
                  : topics.maxMessageBytes,
              ),
            },
          ],
        })),
      });
    }
    return commonPartitionCount(await partitionCounts(admin, consumed));
  } finally {
    await admin.disconnect();
  }
}

/**
 * What a dead letter adds to the largest input: its record's other fields, its own key and headers,
 * framing. The dead-letter topic is created this much larger than the input topics.
 */
export const DEAD_LETTER_HEADROOM = 64 * 1024;
/** Kept free of every produce request and record batch: batch and record framing. */
const PRODUCE_MARGIN = 1024;
/** A produce request holds at most this much (a larger message goes alone). */
const PRODUCE_REQUEST_BYTES = 1024 * 1024;

/**
 * Lets other work run between messages: awaiting resolved promises never yields to the event
 * loop, so a batch of hundreds of bad messages would be handled in one go otherwise.
 */
class TimeSlice {
  private start = performance.now();
  constructor(private readonly ms = 4) {}
  async check(): Promise<void> {
    if (performance.now() - this.start < this.ms) return;
    await new Promise((r) => setImmediate(r));
    this.start = performance.now();
  }
}

/** The limits of the topics fairflag produces to, as the broker has them (max.message.bytes). */
export interface ProduceLimits {
  /** Largest record batch each topic takes. */
  maxMessageBytes: Map<string, number>;
  deadLetterPartitions: number;
}

export async function produceLimits(admin: Admin, topics: Config['topics']): Promise<ProduceLimits> {
  const names = [topics.flags, topics.counterparts, topics.deadLetter];
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({
      // ConfigResourceTypes.TOPIC: kafkajs's CommonJS exports hide the enum from Node's ESM loader
      type: 2 as ConfigResourceTypes,
      name,
      configNames: ['max.message.bytes'],
    })),
  });
  const maxMessageBytes = new Map<string, number>();
  for (const r of resources) {
    const v = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
    // the broker's default (1 MiB) if it does not say
    maxMessageBytes.set(r.resourceName, Number.isFinite(v) && v > 0 ? v : 1_048_588);
  }
  const counts = await partitionCounts(admin, [topics.deadLetter]);
  return { maxMessageBytes, deadLetterPartitions: counts.get(topics.deadLetter) ?? 1 };
}

async function partitionCounts(admin: Admin, topics: string[]): Promise<Map<string, number>> {
  const { topics: meta } = await admin.fetchTopicMetadata({ topics });
  const count = new Map(meta.map((m) => [m.name, m.partitions.length]));
  // in the order asked: the refusal lists the topics as the config names them
  return new Map(topics.map((t) => [t, count.get(t) ?? 0]));
}

/** The partition the default (murmur2) partitioner of kafkajs and the Java client gives a key. */
export function partitionOfKey(key: string, partitions: number): number {
  // asked for every message: an account's partition is remembered, the metadata built once
  let homes = HOMES.get(partitions);
  if (!homes) HOMES.set(partitions, (homes = new LRUCache<string, number>({ max: 100_000 })));
  let home = homes.get(key);
  if (home === undefined) {
    let meta = METADATA.get(partitions);
    if (!meta)
      METADATA.set(
        partitions,
        (meta = Array.from({ length: partitions }, (_, partitionId) => ({
          partitionId,
          leader: 0,
          replicas: [0],
          isr: [0],
          partitionErrorCode: 0,
        }))),
      );
    home = DEFAULT_PARTITIONER({ topic: '', partitionMetadata: meta, message: { key, value: null } });
    homes.set(key, home);
  }
  return home;
}
const HOMES = new Map<number, LRUCache<string, number>>();
const METADATA = new Map<number, PartitionMetadata[]>();
const DEFAULT_PARTITIONER = Partitioners.DefaultPartitioner();

export class Processor {
  readonly metrics: Metrics;
  readonly engine: Engine;
  readonly accounts: OwnedAccounts;
  readonly counts = {
    processed: 0,
    deadLettered: 0,
    late: 0,
    flagsEmitted: 0,
    outcomes: 0,
    counterparts: 0,
    replays: 0,
  };
  private policy: Policy;
  private pendingPolicy: Policy | undefined;
  /** The shadow candidate running beside the live policy (shadow.candidateFile), if any. */
  private shadow: ShadowPolicy | undefined;
  /** A reload's shadow, applied between batches like its policy: null stops the shadow. */
  private pendingShadow: ShadowPolicy | null | undefined;
  private consumer!: Consumer;
  private admin: Admin | undefined;
  private producer!: Producer;
  private server: Server | undefined;
  private healthy = true;
  private stopping = false;
  private readonly checks: ReadinessCheck[];
  /** Partition numbers this member owns (of every consumed topic), from the last assignment. */
  private owned = new Set<number>();
  /** What the topics fairflag writes to accept (read at start, again after a refusal). */
  private limits!: ProduceLimits;
  /**
   * Per source topic-partition ("topic/partition"), known since this member owns it: the source
   * offsets an earlier attempt (another member, or this one before a failure) already
   * dead-lettered, and the intent this member left before producing (see dead-letter-ledger.ts).
   */
  private readonly ledger = new Map<
    string,
    { already: Set<string> | undefined; intent: Intent | undefined }
  >();
  /** A lower bound of each dead-letter partition's end: where the next dead letter will land or after. */
  private readonly deadLetterEnds = new Map<number, bigint>();
  /** Per partition: gathers the batches handed over together into a round. */
  private readonly rounds = new Map<number, DataLoader<EachBatchPayload, void>>();

  private constructor(
    private loaded: LoadedConfig,
    private readonly opts: ProcessorOptions,
    private readonly kafka: Kafka,
    readonly redis: Redis | Cluster,
    readonly backend: RedisStateBackend,
    readonly codec: Codec,
    private readonly geo: GeoIp,
    private readonly log: Logger,
    /** The partition count every consumed topic shares. */
    readonly partitions: number,
  ) {
    this.metrics = createMetrics();
    codec.onLookup = (result) => this.metrics.registryLookups.inc({ result });
    this.policy = compilePolicy(loaded);
    this.shadow = this.shadowFor(loaded);
    setConfigInfo(this.metrics, this.policy.version);
    // every input topic's series from the start: "nothing processed" is a 0, not a missing series
    for (const topic of consumedTopics(loaded.config.topics))
      for (const outcome of ['processed', 'late', 'dead_lettered'])
        this.metrics.events.inc({ topic, outcome }, 0);
    this.accounts = new OwnedAccounts({
      backend,
      layout: () => this.policy.layout,
      ttlMs: () => this.policy.accountTtlMs,
      maxAccounts: loaded.config.state.maxAccounts,
      onUnreadable: (accountId, err) =>
        log.error(
          { accountId, err },
          'stored features unreadable; the account starts again from its next events',
        ),
    });
    this.engine = new Engine({
      accounts: this.accounts,
      backend,
      policy: () => this.policy,
      counterparts: 'emit',
      onSignalError: (signal, err) => {
        this.metrics.signalErrors.inc({ signal });
        log.error({ signal, err }, 'signal threw; event processed without it');
      },
      onStateAtRisk: (err) => {
        // crash-only: memory holds changes Redis lacks and no later batch may write them; a new
        // process replays from the last commit (the orchestrator restarts it)
        log.fatal({ err }, 'a batch failed after changing memory; exiting so the partition is replayed');
        process.exit(70);
      },
    });
    this.checks = [
      { name: 'redis', check: async () => (await this.redis.ping()) === 'PONG' },
      {
        name: 'registry',
        check: async () => {
          const { status } = await registryGet(this.config.registry, '/subjects', 1500);
          return status >= 200 && status < 300;
        },
      },
      // Kafka is asked too, like Redis and the registry: a consumer that has not noticed yet that
      // the broker is gone (no crash, no batch failed) still counts itself "joined".
      { name: 'kafka', check: async () => this.healthy && this.joined && (await this.kafkaAnswers()) },
    ];
    this.metrics.probe.run = async () => (await readiness(this.checks)).checks;
  }

  private joined = false;

  get config(): Config {
    return this.loaded.config;
  }
  get configVersion(): string {
    return this.policy.version;
  }
  get activePolicy(): Policy {
    return this.policy;
  }
  /** Partition numbers owned now. */
  get ownedPartitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  static async start(opts: ProcessorOptions): Promise<Processor> {
    const { config } = opts.loaded;
    const log = opts.log;
    log.info({ configVersion: opts.loaded.version, sources: opts.loaded.sources }, 'starting fairflag');
    const geo = await GeoIp.open(config.maxmind);
    if (opts.refuseTestDatabases && !config.maxmind.allowTestDatabases) geo.refuseTestDatabases();
    const redis = connectRedis(config.redis);
    // Without a listener ioredis prints every failed reconnect to stderr as plain text ("[ioredis]
    // Unhandled error event", about one a second while Redis is down): log them as JSON instead.
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error; reconnecting'));
    await redis.connect().catch((err: Error) => {
      throw new Error(
        `cannot connect to Redis at ${config.redis.clusterNodes.join(',') || redactUrl(config.redis.url)}: ${err.message}`,
      );
    });
    const codec = await Codec.connect(config, (m) => log.warn(m));
    // a certificate not trusted or a password refused fails start-up now, naming the broker
    await checkKafkaConnection(config.kafka, log);
    const kafka = kafkaClient(config.kafka, log);
    const partitions = await ensureTopics(kafka, config.topics);
    const backend = new RedisStateBackend(redis, config.redis.keyPrefix);
    const proc = new Processor(opts.loaded, opts, kafka, redis, backend, codec, geo, log, partitions);
    await proc.run();
    return proc;
  }

  private async run(): Promise<void> {
    const { config } = this.loaded;
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.admin = this.kafka.admin({ retry: { retries: 0 } });
    await this.admin.connect();
    await this.readLimits();
    this.consumer = this.kafka.consumer({
      groupId: config.kafka.groupId,
      sessionTimeout: config.kafka.sessionTimeout,
      maxWaitTimeInMs: config.kafka.maxWaitTime,
      maxBytesPerPartition: config.kafka.maxBytesPerPartition,
      maxBytes: config.kafka.maxBytes,
      allowAutoTopicCreation: false,
      partitionAssigners: [coPartitionedAssigner(() => this.ownedPartitions)],
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      this.onAssignment(e.payload.memberAssignment, e.payload.memberId);
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      // whatever it held may have moved on elsewhere meanwhile
      this.engine.forget();
      this.shadow?.engine.forget();
      this.ledger.clear();
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
      // kafkajs restarts after a retriable error; otherwise (or when retry.restartOnFailure says
      // no) the consumer is gone for good and this process consumes nothing any more
      if (!e.payload.restart && !this.stopping)
        this.fatal(
          `the Kafka consumer crashed and will not restart: ${(e.payload.error as Error)?.message ?? String(e.payload.error)}`,
        );
    });
    this.consumer.on(this.consumer.events.DISCONNECT, () => (this.joined = false));
    await this.consumer.connect();
    this.watchStuckBatches();
    this.watchLag();
    await this.consumer.subscribe({
      topics: consumedTopics(config.topics),
      fromBeginning: config.kafka.offsetReset === 'earliest',
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
      eachBatch: async (payload) => {
        if (!payload.batch.messages.length) return;
        const done = this.inFlight.begin(payload.batch);
        try {
          this.applyPendingPolicy();
          await this.roundOf(payload.batch.partition).load(payload);
        } finally {
          done();
        }
      },
    });
    if (this.opts.http !== false) {
      this.server = await startHealthServer(
        config.http.port,
        config.http.host,
        this.metrics.registry,
        this.checks,
        () => this.liveness(),
      );
      this.log.info(
        { host: config.http.host, port: config.http.port },
        'health and metrics on /livez /readyz /metrics',
      );
    }
  }

  /**
   * A new assignment: partitions no longer owned are forgotten (their next owner loads them from
   * Redis); partitions kept keep their accounts in memory. Runs inside kafkajs's join, before any
   * batch of the new generation.
   */
  private onAssignment(assignment: Record<string, number[]>, memberId: string): void {
    const now = new Set(Object.values(assignment).flat());
    const revoked = new Set([...this.owned].filter((p) => !now.has(p)));
    const dropped = revoked.size ? this.engine.forget(revoked) : 0;
    if (revoked.size) this.shadow?.engine.forget(revoked);
    for (const key of [...this.ledger.keys()])
      if (revoked.has(Number(key.slice(key.lastIndexOf('/') + 1)))) this.ledger.delete(key);
    this.owned = now;
    this.log.info(
      { memberId, partitions: this.ownedPartitions, revoked: [...revoked], accountsDropped: dropped },
      'joined consumer group',
    );
  }

  /** Reads what the topics fairflag writes to accept; says so when a dead letter may not fit whole. */
  private async readLimits(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      this.limits = await produceLimits(admin, this.config.topics);
    } finally {
      await admin.disconnect();
    }
    const t = this.config.topics;
    const dlq = this.limits.maxMessageBytes.get(t.deadLetter) ?? 0;
    if (dlq < t.maxMessageBytes + DEAD_LETTER_HEADROOM)
      this.log.warn(
        { topic: t.deadLetter, maxMessageBytes: dlq, wanted: t.maxMessageBytes + DEAD_LETTER_HEADROOM },
        'the dead-letter topic takes less than the largest input plus its record: dead letters of the largest inputs will be truncated (source position, digests and the first bytes kept); raise its max.message.bytes to keep them whole',
      );
  }

  /**
   * Runs one step of a batch, retrying with backoff and jitter while the batch is still ours: for
   * as long as it takes when a service is out (failure.ts), at most `unexpectedAttempts` times in
   * all for anything else. Then (or when the batch is no longer ours) the last error is thrown.
   */
  private async attempt<T>(
    step: 'process' | 'persist' | 'produce',
    b: EachBatchPayload,
    f: () => Promise<T>,
    unexpectedAttempts = this.config.processing.attempts,
  ): Promise<T> {
    let unexpected = 0;
    const again = async (err: Error, attempt: number): Promise<boolean> => {
      if (!b.isRunning() || b.isStale() || this.stopping) return false;
      const j = judge(err);
      if (j.kind !== 'outage' && ++unexpected >= unexpectedAttempts) return false;
      this.healthy = false;
      this.metrics.retries.inc({ step, cause: retryCause(j) });
      this.log.warn(
        {
          err: j.detail,
          kind: j.kind,
          ...(j.kind === 'outage' ? { service: j.service } : { of: unexpectedAttempts }),
          topic: b.batch.topic,
          partition: b.batch.partition,
          attempt,
          step,
        },
        j.kind === 'outage' ? 'batch step failed: a service is out; retrying' : 'batch step failed; retrying',
      );
      await b.heartbeat().catch(() => undefined);
      return true;
    };
    // The first try runs outside the backoff: nearly every step succeeds at once, and setting the
    // library up for every step of every batch is a visible cost when batches are small.
    try {
      return await f();
    } catch (err) {
      if (!(await again(err as Error, 1))) throw err;
    }
    return backOff(f, {
      numOfAttempts: Number.MAX_SAFE_INTEGER,
      startingDelay: 200,
      maxDelay: 5_000,
      jitter: 'full',
      // the first retry waits as it did when the library made the first try
      delayFirstAttempt: true,
      retry: (err: Error, n) => again(err, n + 1),
    });
  }

  /**
   * Whether a step that gave up may be split to find the message: an unexpected failure (not an
   * outage) while the batch is still ours.
   */
  private isolatable(b: EachBatchPayload, err: unknown): boolean {
    return b.isRunning() && !b.isStale() && !this.stopping && judge(err).kind !== 'outage';
  }

  /** Redis and a Kafka broker answer now: a failure that persists is then not theirs. */
  private async servicesAnswer(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG' && (await this.kafkaAnswers());
    } catch {
      return false;
    }
  }

  /**
   * The round a batch joins: the batches of its partition that kafkajs hands over together (one
   * fetch's, started in the same tick) are handled as one (rounds.ts).
   */
  private roundOf(partition: number): DataLoader<EachBatchPayload, void> {
    let loader = this.rounds.get(partition);
    if (!loader) {
      loader = new DataLoader<EachBatchPayload, void>(
        async (members) => {
          try {
            await this.handleRound(members);
            return members.map(() => undefined);
          } catch (err) {
            const e = err instanceof Error ? err : new Error(String(err));
            return members.map(() => e);
          }
        },
        { cache: false },
      );
      this.rounds.set(partition, loader);
    }
    return loader;
  }

  private async handleRound(members: readonly EachBatchPayload[]): Promise<void> {
    const lead = members[0]!;
    const partition = lead.batch.partition;
    const startedAt = performance.now();
    const begunAt = Date.now();
    const done: { batch: Batch; part: Part; dead: DeadLetter[] }[] = [];
    let units: Unit[] = [];
    let written = begunAt;
    let flagsOnTopic = begunAt;
    try {
      // decode -> validate -> enrich -> state -> signals -> score -> flag: nothing durable yet, so
      // a failure here (registry, Redis) retries from the start; one that keeps failing otherwise
      // is split to find the message (usually there is one unit)
      units = await this.processRound(members);
      await this.shadowBatch(partition, units);
      written = flagsOnTopic = Date.now();
      // produce -> persist, in this partition's write order; then commit
      for (const unit of units) {
        if (unit.result) await unit.result.turn.ready;
        for (const { b, part } of unit.pieces) {
          const dead = this.deadLetters(b.batch, part);
          const producing = performance.now();
          await this.produce(b, part, dead);
          this.observeStage('produce', producing);
          flagsOnTopic = Date.now();
          done.push({ batch: b.batch, part, dead });
        }
        if (unit.result) {
          const result = unit.result;
          // the store refusing a write is no message's doing: retried while the batch is ours
          const persisting = performance.now();
          await this.attempt('persist', lead, () => this.engine.persist(result), Number.MAX_SAFE_INTEGER);
          this.observeStage('persist', persisting);
          result.turn.done();
        }
      }
      this.healthy = true;
      if (HOLD_BEFORE_COMMIT_MS > 0) {
        for (const b of members)
          this.log.info(
            { topic: b.batch.topic, partition, holdMs: HOLD_BEFORE_COMMIT_MS },
            'batch written, not yet committed (fault testing hold)',
          );
        await new Promise((r) => setTimeout(r, HOLD_BEFORE_COMMIT_MS));
      }
      const commits = members.map((b) => {
        const { topic, messages } = b.batch;
        const last = messages[messages.length - 1]!.offset;
        b.resolveOffset(last);
        // an intent that still covers later offsets (an earlier attempt dead-lettered past this
        // batch) stays on the committed offset; else the commit clears it
        const entry = this.ledger.get(`${topic}/${partition}`);
        const carried = entry?.intent && entry.intent.through > BigInt(last) ? entry.intent : undefined;
        return {
          entry,
          carried,
          offset: {
            topic,
            partition,
            offset: (BigInt(last) + 1n).toString(),
            metadata: carried ? intentMetadata(carried) : null,
          },
        };
      });
      const committing = performance.now();
      await this.consumer.commitOffsets(commits.map((c) => c.offset));
      this.observeStage('commit', committing);
      for (const { entry, carried } of commits) if (entry && !carried) entry.intent = undefined;
    } catch (err) {
      // Given up before the commit (the partition moved, the processor stops, the group changed):
      // memory may hold changes Redis lacks (of this round, or of the parts of it processed before
      // the failure), so the partition is forgotten; its next owner replays.
      for (const unit of units) unit.result?.turn.fail(err);
      this.engine.forget(new Set([partition]));
      this.shadow?.engine.forget(new Set([partition]));
      // what this round dead-lettered is found again by whoever replays it
      for (const b of members) this.ledger.delete(`${b.batch.topic}/${partition}`);
      if (err instanceof StoppedBeforeProduce) {
        this.log.info(
          {
            batches: members.map((b) => ({
              topic: b.batch.topic,
              partition,
              firstOffset: b.batch.messages[0]?.offset,
            })),
          },
          'stopping: batch not produced; the next owner replays it from the last commit',
        );
        return;
      }
      throw err;
    }
    for (const { batch, part, dead } of done)
      this.account(batch, part, dead, { startedAt, begunAt, written, flagsOnTopic });
    for (const { batch } of members)
      this.metrics.lag.set(
        { topic: batch.topic, partition: String(batch.partition) },
        Number(batch.offsetLag()),
      );
    await lead.heartbeat();
  }

  /**
   * A round's batches processed as one engine batch; a lone batch, or the batches of a round that
   * keeps failing with an unexpected error, one by one (each split to find the message).
   */
  private async processRound(members: readonly EachBatchPayload[]): Promise<Unit[]> {
    const lead = members[0]!;
    if (members.length > 1) {
      let together: Awaited<ReturnType<Processor['processTogether']>> | undefined;
      try {
        together = await this.attempt('process', lead, () => this.processTogether(members));
      } catch (err) {
        if (!this.isolatable(lead, err)) throw err;
        this.log.warn(
          {
            err: describeError(err),
            partition: lead.batch.partition,
            batches: members.map((b) => `${b.batch.topic}/${b.batch.partition}`),
          },
          'a round of batches keeps failing with an unexpected error; processing them one by one',
        );
      }
      // outside the retries: memory holds the round's changes from here on
      if (together) {
        const { result, prepared, inputs } = together;
        const shares = shareOut(result, inputs);
        return [
          {
            result,
            pieces: members.map((b, i) => ({ b, part: { prepared: prepared[i]!, result: shares[i] } })),
          },
        ];
      }
    }
    const units: Unit[] = [];
    for (const b of members)
      for (const part of await this.processBatch(b)) units.push({ result: part.full, pieces: [{ b, part }] });
    return units;
  }

  /** One engine batch over the round's batches, in the order kafkajs handed them over. */
  private async processTogether(members: readonly EachBatchPayload[]) {
    const decoding = performance.now();
    const prepared: Part['prepared'][] = [];
    for (const b of members) prepared.push(await this.prepare(b.batch));
    const inputs = prepared.map((p) => p.items.map((i) => i.input));
    const result = await this.processed(inputs.flat(), members[0]!.batch.partition, decoding);
    return { result, prepared, inputs };
  }

  /** A batch processed whole, or (after an unexpected failure that persists) in parts. */
  private async processBatch(b: EachBatchPayload): Promise<Part[]> {
    const messages = b.batch.messages;
    try {
      return [await this.attempt('process', b, () => this.processPart(b.batch, messages))];
    } catch (err) {
      if (!this.isolatable(b, err)) throw err;
      this.metrics.isolations.inc({ step: 'process' });
      this.log.warn(
        {
          err: describeError(err),
          topic: b.batch.topic,
          partition: b.batch.partition,
          messages: messages.length,
          attempts: this.config.processing.attempts,
        },
        'batch keeps failing with an unexpected error; splitting it to find the message',
      );
      return this.isolate(b, messages, err);
    }
  }

  private async processPart(batch: Batch, messages: KafkaMessage[]): Promise<Part> {
    const decoding = performance.now();
    const prepared = await this.prepare(batch, messages);
    const result = await this.processed(
      prepared.items.map((i) => i.input),
      batch.partition,
      decoding,
    );
    return { prepared, result, full: result };
  }

  /** The engine over decoded inputs; the decode, features and signals stages into the metrics. */
  private async processed(inputs: EngineInput[], partition: number, decoding: number): Promise<BatchResult> {
    const processing = this.observeStage('decode', decoding);
    const result = await this.engine.process(inputs, partition);
    const ms = performance.now() - processing;
    this.metrics.stageDuration.observe({ stage: 'features' }, Math.max(0, ms - result.signalsMs) / 1000);
    this.metrics.stageDuration.observe({ stage: 'signals' }, result.signalsMs / 1000);
    return result;
  }

  /** Observes the time since `since` (performance.now()) as a stage's; returns now. */
  private observeStage(stage: 'decode' | 'produce' | 'persist' | 'commit', since: number): number {
    const now = performance.now();
    this.metrics.stageDuration.observe({ stage }, (now - since) / 1000);
    return now;
  }

  /**
   * Bisects messages whose processing fails: halves that succeed are kept (in order), halves that
   * fail are split again, down to the message; a message is blamed (dead-lettered as
   * processing_error) only while Redis and Kafka answer, else it is retried as an outage.
   */
  private async isolate(b: EachBatchPayload, messages: KafkaMessage[], err: unknown): Promise<Part[]> {
    if (messages.length === 1) return [await this.blame(b, messages[0]!, err)];
    const mid = Math.ceil(messages.length / 2);
    const parts: Part[] = [];
    for (const half of [messages.slice(0, mid), messages.slice(mid)]) {
      try {
        parts.push(await this.attempt('process', b, () => this.processPart(b.batch, half), 1));
      } catch (e) {
        if (!this.isolatable(b, e)) throw e;
        parts.push(...(await this.isolate(b, half, e)));
      }
    }
    return parts;
  }

  private async blame(b: EachBatchPayload, message: KafkaMessage, err: unknown): Promise<Part> {
    for (let wait = 200; ; wait = Math.min(5_000, wait * 2)) {
      if (await this.servicesAnswer()) {
        const { topic, partition } = b.batch;
        this.log.error(
          { err, topic, partition, offset: message.offset },
          'a batch step fails on this message alone; dead-lettered, the rest of the batch goes on',
        );
        const detail = `a batch step failed on this message alone: ${describeError(err)}`;
        return {
          prepared: { items: [], dead: [{ reason: 'processing_error', detail, message, topic, partition }] },
        };
      }
      // Redis or Kafka does not answer: an outage after all; try the message again after a while
      await new Promise((r) => setTimeout(r, Math.random() * wait));
      try {
        return await this.attempt('process', b, () => this.processPart(b.batch, [message]), 1);
      } catch (e) {
        if (!this.isolatable(b, e)) throw e;
        err = e;
      }
    }
  }

  /** Decodes, validates and enriches a batch's messages; the unusable ones become dead letters. */
  private async prepare(
    batch: Batch,
    messages: KafkaMessage[] = batch.messages,
  ): Promise<{ items: Prepared[]; dead: DeadLetter[] }> {
    const limits = this.config.validation;
    const items: Prepared[] = [];
    const dead: DeadLetter[] = [];
    const now = Date.now();
    const family = this.codec.familyOfTopic(batch.topic);
    // registry lookups of the batch's new writer ids, in parallel, before the messages in order
    if (batch.topic !== this.config.topics.counterparts) await this.codec.warm(messages.map((m) => m.value));
    const slice = new TimeSlice();
    for (const message of messages) {
      await slice.check();
      const fail = (reason: DeadLetterReason, detail: string) =>
        dead.push({ reason, detail, message, topic: batch.topic, partition: batch.partition });
      // before anything that costs: the sizes kafkajs already knows
      const keyBytes = message.key?.length ?? 0;
      if (keyBytes > limits.maxKeyBytes) {
        fail('oversized', `key of ${keyBytes} bytes exceeds validation.maxKeyBytes (${limits.maxKeyBytes})`);
        continue;
      }
      const headers = headerTotals(message.headers);
      if (headers.count > limits.maxHeaders || headers.bytes > limits.maxHeaderBytes) {
        fail(
          'oversized',
          headers.count > limits.maxHeaders
            ? `${headers.count} headers exceed validation.maxHeaders (${limits.maxHeaders})`
            : `headers of ${headers.bytes} bytes exceed validation.maxHeaderBytes (${limits.maxHeaderBytes})`,
        );
        continue;
      }
      const value = message.value;
      if (!value || value.length === 0) {
        fail('not_wire_format', 'empty message value');
        continue;
      }
      if (value.length > limits.maxPayloadBytes) {
        fail(
          'oversized',
          `payload of ${value.length} bytes exceeds validation.maxPayloadBytes (${limits.maxPayloadBytes})`,
        );
        continue;
      }
      try {
        const input = await this.inputOf(batch.topic, family, value, now);
        if ('reason' in input) {
          fail(input.reason, input.detail);
          continue;
        }
        const accountId = accountOf(input);
        const home = partitionOfKey(accountId, this.partitions);
        if (home !== batch.partition) {
          fail(
            'wrong_partition',
            `${accountId} belongs on partition ${home} of ${this.partitions}, this message is on ${batch.partition}: every input topic must be keyed by account id with the default (murmur2) partitioner`,
          );
          continue;
        }
        items.push({ input, message });
      } catch (err) {
        // an outage (the registry) is rethrown and the batch retried; anything else is this
        // message's: its reason, or processing_error with the error's class and message
        const { reason, detail } = messageFailure(err);
        fail(reason, detail);
      }
    }
    return { items, dead };
  }

  private async inputOf(
    topic: string,
    family: Family | undefined,
    value: Buffer,
    now: number,
  ): Promise<EngineInput | { reason: DeadLetterReason; detail: string }> {
    const t = this.config.topics;
    const limits = this.config.validation;
    // what it throws is judged by the caller (failure.ts)
    if (topic === t.counterparts) return { kind: 'counterpart', record: decodeCounterpart(value) };
    if (topic === t.reviewOutcomes) {
      const outcome = validateOutcome(await this.codec.decodeAs('reviewOutcome', value), limits, now);
      return { kind: 'outcome', outcome };
    }
    if (!family) throw new Error(`no family for topic ${topic}`);
    const r = ingest(family, await this.codec.decodeAs(family as SchemaRole, value), limits, this.geo, now);
    return r.ok ? { kind: 'event', event: r.event } : { reason: r.reason, detail: r.detail };
  }

  /** The batch's dead letters: what could not be used, and what the engine refused. */
  private deadLetters(batch: Batch, { prepared, result }: Part): DeadLetter[] {
    const dead = [...prepared.dead];
    result?.outcomes.forEach((o, i) => {
      if (o.status !== 'conflict' && o.status !== 'error') return;
      dead.push({
        reason: o.status === 'conflict' ? 'conflicting_duplicate' : 'processing_error',
        detail: o.detail ?? o.status,
        message: prepared.items[i]!.message,
        topic: batch.topic,
        partition: batch.partition,
      });
    });
    return dead;
  }

  /**
   * Flags, counterpart records and dead letters, encoded once and split into produce requests that
   * fit the topics' limits (acks from all replicas). Sent in order; a retry resumes after the last
   * request the broker acknowledged, so nothing is sent twice by this process.
   */
  private async outgoing({ prepared, result }: Part, dead: DeadLetter[], batch: Batch): Promise<Outgoing> {
    const t = this.config.topics;
    const items: OutgoingItem[] = [];
    const add = (topic: string, message: Message, what: string, source?: DeadLetter) =>
      items.push({ topic, message, size: messageSize(message), what, source });
    // the message a flag or a counterpart record comes from, should it be refused on its own
    const sourceOf = (eventId: string): DeadLetter | undefined => {
      const it = prepared.items.find(
        (i) => i.input.kind === 'event' && i.input.event.event.eventId === eventId,
      );
      return it && { reason: 'processing_error', detail: '', message: it.message, ...where(batch) };
    };
    for (const { flag } of result?.emissions ?? [])
      add(
        t.flags,
        {
          key: flag.accountId,
          value: await this.codec.encode('flag', flag),
          headers: { 'fairflag-flag-id': flag.flagId, 'fairflag-revision': String(flag.revision) },
        },
        `review flag ${flag.flagId} rev ${flag.revision}`,
        sourceOf(flag.triggeringEventId),
      );
    for (const r of result?.counterparts ?? [])
      add(
        t.counterparts,
        { key: r.accountId, value: encodeCounterpart(r) },
        `counterpart record for ${r.accountId}`,
        sourceOf(sourceEventId(r)),
      );
    const slice = new TimeSlice();
    for (const d of dead) {
      await slice.check();
      add(t.deadLetter, await this.deadLetterMessage(d), 'dead letter', d);
    }
    // requests of at most PRODUCE_REQUEST_BYTES: kafkajs encodes and checksums each synchronously
    const budget = (topic: string) =>
      Math.min(
        PRODUCE_REQUEST_BYTES,
        (this.limits.maxMessageBytes.get(topic) ?? this.config.topics.maxMessageBytes) - PRODUCE_MARGIN,
      );
    return { chunks: chunkBySize(items, budget), sent: 0 };
  }

  private async deadLetterMessage(d: DeadLetter, minimal?: string): Promise<Message> {
    let shaped = await this.shape(d);
    if (minimal) shaped = await minimalDeadLetter(shaped, d, minimal);
    return {
      key: shaped.key,
      value: await this.codec.encode('deadLetter', shaped.record),
      headers: shaped.headers,
      partition: shaped.partition,
    };
  }

  /**
   * Produces a part's messages. A request refused for something other than an outage, again and
   * again, is split: the topics' limits are read again, each message is sent on its own, and one
   * that is still refused is replaced by a minimal dead letter of the message it came from.
   */
  private async produce(b: EachBatchPayload, part: Part, all: DeadLetter[]): Promise<void> {
    // kafkajs drops commits silently once its consumer is stopping: a dead letter produced now
    // would have no intent on record, and its message would be dead-lettered again by the next
    // owner. Nothing is produced; the next owner replays the batch from the last commit.
    if (this.stopping || !b.isRunning()) throw new StoppedBeforeProduce(b.batch.topic, b.batch.partition);
    const dead = await this.attempt(
      'produce',
      b,
      () => this.notYetDeadLettered(b.batch, all),
      Number.MAX_SAFE_INTEGER,
    );
    const out = await this.outgoing(part, dead, b.batch);
    try {
      await this.attempt('produce', b, () => this.send(out));
      return;
    } catch (err) {
      if (!this.isolatable(b, err)) throw err;
      this.metrics.isolations.inc({ step: 'produce' });
      this.log.warn(
        { err: describeError(err), topic: b.batch.topic, partition: b.batch.partition },
        'produce keeps being refused; sending message by message to find the one refused',
      );
    }
    await this.readLimits();
    for (const it of out.chunks.slice(out.sent).flat()) {
      try {
        await this.attempt('produce', b, () => this.send({ chunks: [[it]], sent: 0 }), 1);
        continue;
      } catch (err) {
        if (!this.isolatable(b, err)) throw err;
        this.log.error(
          { err, what: it.what, topic: it.topic, offset: it.source?.message.offset },
          'refused on its own; replaced by a smaller dead letter of its message',
        );
        if (!it.source) continue;
        const own = it.what === 'dead letter';
        const why = `${own ? 'the whole dead letter' : `its ${it.what}`} was refused: ${describeError(err)}`;
        // a dead letter shaped again under the limits just read, if that makes it smaller; else
        // (or for a flag or counterpart record) a minimal dead letter of the source message
        let message = own ? await this.deadLetterMessage(it.source) : undefined;
        if (!message || messageSize(message) >= it.size)
          message = await this.deadLetterMessage(own ? it.source : { ...it.source, detail: why }, why);
        const replacement = {
          ...it,
          topic: this.config.topics.deadLetter,
          message,
          size: messageSize(message),
        };
        // refused even so: the dead-letter topic refuses everything, which no message causes
        await this.attempt(
          'produce',
          b,
          () => this.send({ chunks: [[replacement]], sent: 0 }),
          Number.MAX_SAFE_INTEGER,
        );
        if (!own) this.metrics.deadLetters.inc({ reason: 'processing_error' });
      }
    }
  }

  /** A dead letter shaped to fit the dead-letter topic, and logged. */
  private async shape(d: DeadLetter): Promise<ShapedDeadLetter> {
    const v = this.config.validation;
    const shaped = await shapeDeadLetter(
      d,
      {
        recordBudget:
          (this.limits.maxMessageBytes.get(this.config.topics.deadLetter) ??
            this.config.topics.maxMessageBytes) -
          PRODUCE_MARGIN -
          2 * DEAD_LETTER_KEY_ROOM,
        partitions: this.limits.deadLetterPartitions,
        maxOriginalBytes: this.config.deadLetters.maxOriginalBytes,
        maxHeaders: v.maxHeaders,
        maxHeaderBytes: v.maxHeaderBytes,
      },
      PROCESSOR_VERSION,
    );
    this.log.warn(
      {
        reason: d.reason,
        detail: shaped.record.detail,
        topic: d.topic,
        partition: d.partition,
        offset: d.message.offset,
        ...(shaped.record.truncated ? { truncated: shaped.record.truncated } : {}),
      },
      'dead-lettered',
    );
    return shaped;
  }

  private async send(out: Outgoing): Promise<void> {
    const dlq = this.config.topics.deadLetter;
    while (out.sent < out.chunks.length) {
      const chunk = out.chunks[out.sent]!;
      const byTopic = new Map<string, Message[]>();
      for (const it of chunk) byTopic.set(it.topic, [...(byTopic.get(it.topic) ?? []), it.message]);
      const acked = await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      for (const r of acked)
        if (r.topicName === dlq && r.baseOffset !== undefined) {
          const n = (byTopic.get(dlq) ?? []).filter((m) => m.partition === r.partition).length;
          const end = BigInt(r.baseOffset) + BigInt(n);
          if (end > (this.deadLetterEnds.get(r.partition) ?? -1n)) this.deadLetterEnds.set(r.partition, end);
        }
      out.sent++;
    }
  }

  /**
   * The dead letters of a batch that no earlier attempt produced; and, before they are produced,
   * the intent that lets a later owner find them (see dead-letter-ledger.ts).
   */
  private async notYetDeadLettered(batch: Batch, dead: DeadLetter[]): Promise<DeadLetter[]> {
    const { topic, partition } = batch;
    const key = `${topic}/${partition}`;
    const first = BigInt(batch.messages[0]!.offset);
    const target = partition % this.limits.deadLetterPartitions;
    let entry = this.ledger.get(key);
    if (!entry) {
      // the first batch since this member took the partition, dead letters or not: an intent an
      // earlier attempt left must survive this member's commits while it covers later offsets
      const left = await readIntent(this.admin!, this.config.kafka.groupId, topic, partition);
      entry = { already: undefined, intent: left && left.through >= first ? left : undefined };
      this.ledger.set(key, entry);
    }
    if (!dead.length) return dead;
    if (!entry.already) {
      // the first dead letters since then: did an earlier attempt produce some of them?
      const uncertain = entry.intent && entry.intent.through >= first ? entry.intent : undefined;
      entry.already = uncertain
        ? await deadLetteredSince(
            this.kafka,
            this.admin!,
            this.config.topics.deadLetter,
            target,
            uncertain.from,
            {
              topic,
              partition,
              first,
            },
          )
        : new Set<string>();
      if (uncertain)
        this.log.info(
          { topic, partition, from: String(uncertain.from), found: entry.already.size },
          'an earlier attempt left dead letters of this partition uncommitted; those are not produced again',
        );
    }
    const already = entry.already;
    const fresh = dead.filter((d) => !already.has(d.message.offset));
    for (const d of dead)
      if (already.has(d.message.offset))
        this.log.info(
          { topic, partition, offset: d.message.offset, reason: d.reason },
          'already dead-lettered',
        );
    if (!fresh.length) return fresh;
    let end = this.deadLetterEnds.get(target);
    if (end === undefined) {
      const ends = await this.admin!.fetchTopicOffsets(this.config.topics.deadLetter);
      end = BigInt(ends.find((p) => p.partition === target)?.high ?? '0');
      this.deadLetterEnds.set(target, end);
    }
    // an intent of this batch (an earlier part) or of an uncommitted earlier attempt still stands
    const from = entry.intent && entry.intent.from < end ? entry.intent.from : end;
    let through = entry.intent?.through ?? -1n;
    for (const d of fresh) if (BigInt(d.message.offset) > through) through = BigInt(d.message.offset);
    const intent = { from, through };
    await this.consumer.commitOffsets([
      { topic, partition, offset: String(first), metadata: intentMetadata(intent) },
    ]);
    entry.intent = intent;
    return fresh;
  }

  /** Metrics, counts and logs, once the batch is committed. */
  /** The account cache's counts since the last batch, into the metrics. */
  private readonly cacheSeen = { loads: 0, empty: 0, unreadable: 0, evictions: 0 };
  private cacheMetrics(): void {
    const s = this.accounts.stats;
    const was = this.cacheSeen;
    this.metrics.accountsInMemory.set(this.accounts.size);
    const found = s.loads - s.loadedEmpty - s.unreadable - (was.loads - was.empty - was.unreadable);
    if (found) this.metrics.accountLoads.inc({ stored: 'found' }, found);
    if (s.loadedEmpty > was.empty)
      this.metrics.accountLoads.inc({ stored: 'none' }, s.loadedEmpty - was.empty);
    if (s.unreadable > was.unreadable)
      this.metrics.accountLoads.inc({ stored: 'unreadable' }, s.unreadable - was.unreadable);
    if (s.evictions > was.evictions) this.metrics.accountEvictions.inc(s.evictions - was.evictions);
    Object.assign(was, {
      loads: s.loads,
      empty: s.loadedEmpty,
      unreadable: s.unreadable,
      evictions: s.evictions,
    });
  }

  private account(
    batch: Batch,
    { prepared, result = EMPTY_RESULT }: Part,
    dead: DeadLetter[],
    times: { startedAt: number; begunAt: number; written: number; flagsOnTopic: number },
  ): void {
    this.cacheMetrics();
    const topic = batch.topic;
    let processed = 0;
    let late = 0;
    let replays = 0;
    result.outcomes.forEach((o, i) => {
      const kind = prepared.items[i]!.input.kind;
      if (o.status === 'replay') replays++;
      if (o.status !== 'applied' && o.status !== 'replay') return;
      if (o.lateFor.length) late++;
      else processed++;
      if (kind === 'outcome') this.counts.outcomes++;
      if (kind === 'counterpart') this.counts.counterparts++;
      for (const e of o.evaluations)
        if (e.evaluation.status === 'fired') this.metrics.signalFired.inc({ signal: e.signalId });
    });
    if (this.opts.onBatchWritten) {
      const producedAt = new Map<string, number>();
      for (const it of prepared.items)
        if (it.input.kind === 'event')
          producedAt.set(it.input.event.event.eventId, Number(it.message.timestamp));
      this.opts.onBatchWritten({
        startedAt: times.startedAt,
        begunAt: times.begunAt,
        producedAt: [...producedAt.values()],
        featuresWrittenAt: times.written,
        flags: result.emissions.map(({ flag }) => ({
          triggeredAt: producedAt.get(flag.triggeringEventId) ?? times.flagsOnTopic,
          producedAt: times.flagsOnTopic,
        })),
      });
    }
    const now = Date.now();
    for (const it of prepared.items) {
      const age = now - Number(it.message.timestamp);
      // a producer's clock far off (a CreateTime of 1 ms) would poison the histogram's sum
      if (age >= 0 && age < 86_400_000) this.metrics.latency.observe(age / 1000);
    }
    for (const d of dead) this.metrics.deadLetters.inc({ reason: d.reason });
    for (const { flag } of result.emissions)
      this.metrics.flags.inc({ queue: flag.reviewQueue, severity: flag.severity });
    for (const c of result.closed)
      for (const s of c.state.signals)
        this.metrics.reviewOutcomes.inc({ signal: s.signalId, outcome: c.outcome });
    this.metrics.events.inc({ topic, outcome: 'processed' }, processed);
    this.metrics.events.inc({ topic, outcome: 'late' }, late);
    this.metrics.events.inc({ topic, outcome: 'dead_lettered' }, dead.length);
    this.metrics.lateEvents.inc(late);
    this.counts.processed += processed + late;
    this.counts.late += late;
    this.counts.replays += replays;
    this.counts.deadLettered += dead.length;
    this.counts.flagsEmitted += result.emissions.length;
    for (const { flag } of result.emissions) {
      this.log.info(
        {
          flagId: flag.flagId,
          revision: flag.revision,
          accountId: flag.accountId,
          queue: flag.reviewQueue,
          severity: flag.severity,
          score: flag.score,
          signals: flag.signals.map((s) => s.id),
        },
        'review flag emitted',
      );
    }
    for (const c of result.closed)
      this.log.info({ flagId: c.state.flagId, outcome: c.outcome, queue: c.queue }, 'flag closed by review');
  }

  /** An account's features as Redis has them: as of the last batch written (tests, demo). */
  storedAccount(accountId: string): Promise<AccountFeatures> {
    return readStoredAccount(this.backend, accountId, this.policy.layout);
  }

  /** A broker answers a metadata request now (no retries: readiness must not wait). */
  private async kafkaAnswers(): Promise<boolean> {
    if (!this.admin) return false;
    return (await this.admin.describeCluster()).brokers.length > 0;
  }

  async ready(): Promise<boolean> {
    return (await readiness(this.checks)).ready;
  }

  /**
   * Loads the config again. A valid one takes effect between batches; an invalid one is rejected
   * with its errors and the running one stays.
   */
  reload(): { applied: boolean; version?: string; problems?: string[] } {
    try {
      const loaded = loadConfig(this.opts.reloadWith ?? {});
      const fixed = startOnlyChanges(this.config, loaded.config);
      if (fixed.length)
        throw new ConfigError(
          fixed.map((c) => `${c} (read at start only: restart the processor to change it)`),
          loaded.sources,
        );
      const shadow = this.shadowFor(loaded);
      this.pendingPolicy = compilePolicy(loaded);
      this.pendingShadow = shadow ?? null;
      this.loaded = loaded;
      this.metrics.configReloads.inc({ result: 'applied' });
      this.metrics.configReloadOk.set(1);
      this.log.info(
        { configVersion: loaded.version, previous: this.policy.version },
        'config reloaded; applies from the next batch',
      );
      return { applied: true, version: loaded.version };
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      this.metrics.configReloads.inc({ result: 'rejected' });
      this.metrics.configReloadOk.set(0);
      this.log.error(
        { problems, keeping: this.policy.version },
        'config reload rejected; keeping the running config',
      );
      return { applied: false, problems };
    }
  }

  /** The shadow a config asks for: the running one when its candidate is unchanged. */
  private shadowFor(loaded: LoadedConfig): ShadowPolicy | undefined {
    const file = loaded.config.shadow.candidateFile;
    if (!file) return undefined;
    const base = this.opts.reloadWith ?? {};
    const given = base.file ?? (base.env ?? process.env)['FAIRFLAG_CONFIG'];
    const files = [...(typeof given === 'string' ? [given] : (given ?? [])), file];
    // validated like the live config: a bad candidate throws ConfigError, so the reload is refused
    const candidate = loadConfig({ ...base, file: files });
    if (this.shadow?.file === file && this.shadow.policy.version === candidate.version) return this.shadow;
    return shadowPolicy({
      candidate,
      file,
      redis: this.redis,
      live: this.backend,
      keyPrefix: this.config.redis.keyPrefix,
      onSignalError: (signal, err) => this.log.warn({ signal, err }, 'shadow: signal threw'),
    });
  }

  /**
   * The shadow candidate on the batch's inputs, after the live engine processed them and before
   * they are written (so an account new to the shadow starts from the live copy without this
   * batch): its would-be flags to the shadow topic, then its state. Whatever goes wrong stops the
   * shadow, never the live batch.
   */
  private async shadowBatch(partition: number, units: Unit[]): Promise<void> {
    const s = this.shadow;
    if (!s) return;
    try {
      for (const unit of units) {
        const inputs = unit.pieces.flatMap(({ part }) => part.prepared.items.map((i) => i.input));
        if (!inputs.length) continue;
        const result = await s.engine.process(inputs, partition);
        await result.turn.ready;
        try {
          const messages = await Promise.all(
            result.emissions.map(async ({ flag }) => ({
              key: flag.accountId,
              value: await this.codec.encode('flag', flag),
              headers: { 'fairflag-flag-id': flag.flagId, 'fairflag-revision': String(flag.revision) },
            })),
          );
          if (messages.length)
            await this.producer.send({ topic: this.config.topics.shadowFlags, acks: -1, messages });
          await s.engine.persist(result);
          result.turn.done();
        } catch (err) {
          result.turn.fail(err);
          throw err;
        }
        for (const { flag } of result.emissions)
          this.metrics.shadowFlags.inc({ queue: flag.reviewQueue, severity: flag.severity });
      }
    } catch (err) {
      if (this.shadow === s) this.shadow = undefined;
      s.engine.forget();
      this.log.error(
        { err, candidate: s.file, namespace: s.namespace },
        'shadow candidate stopped after a failure; the live policy goes on (reload to start it again)',
      );
    }
  }

  private applyPendingPolicy(): void {
    if (this.pendingShadow !== undefined) {
      const next = this.pendingShadow ?? undefined;
      if (next !== this.shadow) {
        this.shadow?.engine.forget();
        this.log.info(
          { candidate: next?.file ?? null, version: next?.policy.version ?? null },
          next ? 'shadow candidate running' : 'shadow candidate stopped',
        );
      }
      this.shadow = next;
      this.pendingShadow = undefined;
    }
    if (!this.pendingPolicy) return;
    this.policy = this.pendingPolicy;
    this.pendingPolicy = undefined;
    setConfigInfo(this.metrics, this.policy.version);
    this.accounts.setLayout(this.policy.layout);
  }

  /** Finishes the in-flight batches, commits, disconnects. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.stuckWatch);
    clearTimeout(this.lagWatch);
    this.log.info({ inFlight: this.inFlightBatches() }, 'stopping: finishing in-flight batches');
    this.stopStep = 'finishing in-flight batches and leaving the consumer group';
    await this.consumer?.disconnect();
    this.stopStep = 'disconnecting the Kafka admin client and producer';
    await this.admin?.disconnect();
    await this.producer?.disconnect();
    this.stopStep = 'closing the HTTP server';
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.redis.disconnect();
    // what memory holds is Redis's already (or replayed by the next owner): not kept past the end
    this.engine.forget();
    this.shadow?.engine.forget();
    this.stopStep = 'stopped';
    this.log.info(this.counts, 'stopped');
  }

  /** The port /livez, /readyz and /metrics listen on (the one given, or the one chosen for 0). */
  get httpPort(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  private fatalReason: string | undefined;

  /** Alive unless the processor cannot go on by itself (see ProcessorOptions.onFatal). */
  liveness(): { live: boolean; reason?: string } {
    return this.fatalReason ? { live: false, reason: this.fatalReason } : { live: true };
  }

  private fatal(reason: string): void {
    if (this.fatalReason) return;
    this.fatalReason = reason;
    this.log.fatal({ reason, inFlight: this.inFlightBatches() }, 'cannot go on: /livez fails from now on');
    this.opts.onFatal?.(reason);
  }

  /** A batch in flight longer than processing.stuckBatchTimeout is fatal: nothing else frees it. */
  private watchStuckBatches(): void {
    this.stuckWatch = setInterval(() => {
      if (this.stopping) return;
      const limit = this.config.processing.stuckBatchTimeout;
      const oldest = this.inFlightBatches()[0];
      if (oldest && oldest.ageMs > limit)
        this.fatal(
          `batch ${oldest.topic}/${oldest.partition} offsets ${oldest.firstOffset}-${oldest.lastOffset} in flight for ${oldest.ageMs} ms, more than processing.stuckBatchTimeout (${limit} ms)`,
        );
    }, 1000).unref();
  }
  private stuckWatch: NodeJS.Timeout | undefined;

  /**
   * The group's lag on every partition of the consumed topics, on a timer: a batch's own figure
   * stops when batches stop, so a stuck member (or another one, stopped) would look caught up.
   */
  private watchLag(): void {
    const { lagInterval, groupId, offsetReset } = this.config.kafka;
    const topics = consumedTopics(this.config.topics);
    const measure = async () => {
      if (this.stopping || !this.admin) return;
      try {
        for (const { topic, partition, lag } of await groupLag(this.admin, groupId, topics, offsetReset))
          this.metrics.lag.set({ topic, partition: String(partition) }, lag);
      } catch (err) {
        this.log.warn({ err }, 'consumer lag not measured this time');
      }
    };
    const tick = () => {
      if (this.stopping) return;
      this.lagWatch = setTimeout(() => void measure().finally(tick), lagInterval).unref();
    };
    tick();
  }
  private lagWatch: NodeJS.Timeout | undefined;

  /** What a stop is doing now (for the message when it takes too long). */
  stopStep = 'not stopping';

  private readonly inFlight = new InFlight();

  /** The batches being handled now, oldest first, with how long each has been going. */
  inFlightBatches() {
    return this.inFlight.list();
  }
}

/** The consumer stopped between a batch's processing and its produce. */
class StoppedBeforeProduce extends Error {
  constructor(topic: string, partition: number) {
    super(`${topic}/${partition}: the consumer is stopping; the batch is left to the next owner`);
    this.name = 'StoppedBeforeProduce';
  }
}

interface Prepared {
  input: EngineInput;
  message: KafkaMessage;
}

/** A batch's messages processed together (all of them, unless a failure had to be isolated). */
interface Part {
  prepared: { items: Prepared[]; dead: DeadLetter[] };
  /** Absent for a message blamed for a batch-level failure: it only has its dead letter. */
  result?: BatchShare;
  /** The engine batch it was processed in alone, if so (to write); a round's batches share one. */
  full?: BatchResult;
}

/** One engine batch to write, and the batches (or parts of one) whose messages it holds. */
interface Unit {
  result?: BatchResult;
  pieces: { b: EachBatchPayload; part: Part }[];
}

const EMPTY_RESULT: BatchShare = { outcomes: [], emissions: [], counterparts: [], closed: [] };

const where = (batch: Batch) => ({ topic: batch.topic, partition: batch.partition });

interface OutgoingItem {
  topic: string;
  message: Message;
  size: number;
  /** What it is, for the log: a review flag, a counterpart record, a dead letter. */
  what: string;
  /** The input message it comes from (a dead letter's own), to dead-letter if it is refused alone. */
  source: DeadLetter | undefined;
}

/** A batch's messages to produce, in requests that fit; `sent` of them are acknowledged. */
interface Outgoing {
  chunks: OutgoingItem[][];
  sent: number;
}

/** Room for a dead letter's own Kafka key and headers beside its record. */
const DEAD_LETTER_KEY_ROOM = 512;

/**
 * For fault tests only: hold every batch this long between writing its state and committing its
 * offsets, and say so in the log, so a test can kill the process exactly in that window.
 */
const HOLD_BEFORE_COMMIT_MS = Number(process.env['FAIRFLAG_FAULT_HOLD_BEFORE_COMMIT_MS'] ?? 0);

function accountOf(input: EngineInput): string {
  switch (input.kind) {
    case 'event':
      return input.event.event.accountId;
    case 'outcome':
      return input.outcome.accountId;
    case 'counterpart':
      return input.record.accountId;
  }
}
