// The live pipeline: a Kafka consumer group over the input topics, one batch at a time per
// partition: decode -> enrich -> features -> signals -> flags; then produce flags and dead letters,
// write flag states, and only then commit the batch's offsets.
import type { Server } from 'node:http';
import { Cluster, Redis } from 'ioredis';
import {
  Kafka,
  logLevel,
  type Admin,
  type Batch,
  type Consumer,
  type IHeaders,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import type { Config } from '../../config/schema.js';
import type { EnrichedEvent } from '../domain/events.js';
import { GeoIp } from '../enrich/geoip.js';
import { Engine } from '../engine/engine.js';
import { compilePolicy, type Policy } from '../engine/policy.js';
import { FeatureStore } from '../features/store.js';
import { ingest, type DeadLetterReason } from '../ingest/ingest.js';
import { validateOutcome, InvalidEventError } from '../ingest/validate.js';
import { loadConfig, type LoadedConfig, type LoadOptions } from '../runtime/config-loader.js';
import { startHealthServer, readiness, type ReadinessCheck } from '../runtime/health.js';
import type { Logger } from '../runtime/logger.js';
import { createMetrics, type Metrics } from '../runtime/metrics.js';
import { PROCESSOR_VERSION } from '../runtime/project.js';
import { Codec, DecodeError, type SchemaRole } from './codec.js';

export interface ProcessorOptions {
  loaded: LoadedConfig;
  /** How to load the config again on reload (same file and environment). */
  reloadWith?: LoadOptions;
  log: Logger;
  /** Serve /livez, /readyz, /metrics; default true. */
  http?: boolean;
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

interface DeadLetter {
  reason: DeadLetterReason;
  detail: string;
  message: KafkaMessage;
  topic: string;
  partition: number;
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

export function kafkaClient(cfg: Config['kafka'], log: Logger, clientSuffix = ''): Kafka {
  const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
    [logLevel.ERROR]: 'error',
    [logLevel.WARN]: 'warn',
    [logLevel.INFO]: 'info',
    [logLevel.DEBUG]: 'debug',
  };
  return new Kafka({
    clientId: cfg.clientId + clientSuffix,
    brokers: cfg.brokers,
    logLevel: logLevel.WARN,
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 10_000 },
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        log[levels[level] ?? 'info']({ kafkajs: rest }, message);
      },
  });
}

/** Creates the topics fairflag reads and writes, if missing. */
export async function ensureTopics(kafka: Kafka, topics: Config['topics']): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const names = [
      topics.login,
      topics.ip,
      topics.paymentMethod,
      topics.contract,
      topics.account,
      topics.reviewOutcomes,
      topics.flags,
      topics.deadLetter,
    ];
    const missing = names.filter((t) => !existing.has(t));
    if (missing.length) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: topics.partitions,
          replicationFactor: topics.replicationFactor,
          // an oversized input must still fit, with its reason, into the dead-letter topic
          configEntries: [{ name: 'max.message.bytes', value: String(topics.maxMessageBytes) }],
        })),
      });
    }
  } finally {
    await admin.disconnect();
  }
}

export class Processor {
  readonly metrics: Metrics;
  readonly engine: Engine;
  readonly counts = { processed: 0, deadLettered: 0, late: 0, flagsEmitted: 0, outcomes: 0 };
  private policy: Policy;
  private pendingPolicy: Policy | undefined;
  private consumer!: Consumer;
  private admin: Admin | undefined;
  private producer!: Producer;
  private server: Server | undefined;
  private healthy = true;
  private stopping = false;
  private readonly checks: ReadinessCheck[];

  private constructor(
    private loaded: LoadedConfig,
    private readonly opts: ProcessorOptions,
    private readonly kafka: Kafka,
    readonly redis: Redis | Cluster,
    readonly store: FeatureStore,
    readonly codec: Codec,
    private readonly geo: GeoIp,
    private readonly log: Logger,
  ) {
    this.metrics = createMetrics();
    this.policy = compilePolicy(loaded);
    this.engine = new Engine(
      store,
      () => this.policy,
      (signal, err) => {
        this.metrics.signalErrors.inc({ signal });
        log.error({ signal, err }, 'signal threw; event processed without it');
      },
    );
    this.checks = [
      { name: 'redis', check: async () => (await this.redis.ping()) === 'PONG' },
      {
        name: 'registry',
        check: async () =>
          (await fetch(`${this.config.registry.url}/subjects`, { signal: AbortSignal.timeout(1500) })).ok,
      },
      // Kafka is asked too, like Redis and the registry: a consumer that has not noticed yet that
      // the broker is gone (no crash, no batch failed) still counts itself "joined".
      { name: 'kafka', check: async () => this.healthy && this.joined && (await this.kafkaAnswers()) },
    ];
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

  static async start(opts: ProcessorOptions): Promise<Processor> {
    const { config } = opts.loaded;
    const log = opts.log;
    log.info({ configVersion: opts.loaded.version, sources: opts.loaded.sources }, 'starting fairflag');
    const geo = await GeoIp.open(config.maxmind);
    const redis = connectRedis(config.redis);
    // Without a listener ioredis prints every failed reconnect to stderr as plain text ("[ioredis]
    // Unhandled error event", about one a second while Redis is down): log them as JSON instead.
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error; reconnecting'));
    await redis.connect().catch((err: Error) => {
      throw new Error(
        `cannot connect to Redis at ${config.redis.clusterNodes.join(',') || config.redis.url}: ${err.message}`,
      );
    });
    const codec = await Codec.connect(config, (m) => log.warn(m));
    const kafka = kafkaClient(config.kafka, log);
    await ensureTopics(kafka, config.topics);
    const store = new FeatureStore(redis, compilePolicy(opts.loaded).layout);
    const proc = new Processor(opts.loaded, opts, kafka, redis, store, codec, geo, log);
    await proc.run();
    return proc;
  }

  private async run(): Promise<void> {
    const { config } = this.loaded;
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.admin = this.kafka.admin({ retry: { retries: 0 } });
    await this.admin.connect();
    this.consumer = this.kafka.consumer({
      groupId: config.kafka.groupId,
      sessionTimeout: config.kafka.sessionTimeout,
      maxBytesPerPartition: config.kafka.maxBytesPerPartition,
      maxBytes: config.kafka.maxBytes,

      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      this.log.info(
        { memberId: e.payload.memberId, assignment: e.payload.memberAssignment },
        'joined consumer group',
      );
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      this.log.error({ err: e.payload.error, restart: e.payload.restart }, 'consumer crashed');
    });
    this.consumer.on(this.consumer.events.DISCONNECT, () => (this.joined = false));
    await this.consumer.connect();
    const t = config.topics;
    await this.consumer.subscribe({
      topics: [t.login, t.ip, t.paymentMethod, t.contract, t.account, t.reviewOutcomes],
      fromBeginning: true,
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!batch.messages.length) return;
        this.applyPendingPolicy();
        for (let attempt = 1; ; attempt++) {
          try {
            await this.handleBatch(batch);
            this.healthy = true;
            break;
          } catch (err) {
            // Redis, the registry or a produce failed: nothing of this batch is committed, and
            // replaying it is harmless (idempotent features, deterministic flag ids).
            this.healthy = false;
            this.metrics.retries.inc({ cause: (err as Error).name || 'Error' });
            if (!isRunning() || isStale() || this.stopping) throw err;
            const wait = Math.min(5000, 200 * 2 ** Math.min(attempt, 5));
            this.log.warn(
              {
                err: (err as Error).message,
                topic: batch.topic,
                partition: batch.partition,
                attempt,
                retryInMs: wait,
              },
              'batch failed; retrying',
            );
            await new Promise((r) => setTimeout(r, wait));
            await heartbeat();
          }
        }
        const last = batch.messages[batch.messages.length - 1]!.offset;
        resolveOffset(last);
        await this.consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
        ]);
        this.metrics.lag.set(
          { topic: batch.topic, partition: String(batch.partition) },
          Number(batch.offsetLag()),
        );
        await heartbeat();
      },
    });
    if (this.opts.http !== false) {
      this.server = await startHealthServer(config.http.port, this.metrics.registry, this.checks);
      this.log.info({ port: config.http.port }, 'health and metrics on /livez /readyz /metrics');
    }
  }

  /** A broker answers a metadata request now (no retries: readiness must not wait). */
  private async kafkaAnswers(): Promise<boolean> {
    if (!this.admin) return false;
    return (await this.admin.describeCluster()).brokers.length > 0;
  }

  async ready(): Promise<boolean> {
    return (await readiness(this.checks)).ready;
  }

  private async handleBatch(batch: Batch): Promise<void> {
    const startedAt = performance.now();
    const begunAt = Date.now();
    if (batch.topic === this.config.topics.reviewOutcomes) return this.handleOutcomes(batch);
    const family = this.codec.familyOfTopic(batch.topic);
    if (!family) throw new Error(`no family for topic ${batch.topic}`);
    const limits = this.config.validation;
    const good: { event: EnrichedEvent; message: KafkaMessage }[] = [];
    const dead: DeadLetter[] = [];
    const now = Date.now();
    for (const message of batch.messages) {
      const fail = (reason: DeadLetterReason, detail: string) =>
        dead.push({ reason, detail, message, topic: batch.topic, partition: batch.partition });
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
      let record: unknown;
      try {
        record = await this.codec.decodeAs(family as SchemaRole, value);
      } catch (err) {
        if (err instanceof DecodeError) {
          fail(err.reason, err.message);
          continue;
        }
        throw err;
      }
      const r = ingest(family, record, limits, this.geo, now);
      if (r.ok) good.push({ event: r.event, message });
      else fail(r.reason, r.detail);
    }

    const result = await this.engine.process(good.map((g) => g.event));
    const written = Date.now();
    const flagsTopic = this.config.topics.flags;
    const flagMessages = await Promise.all(
      result.emissions.map(async ({ flag }) => ({
        key: flag.accountId,
        value: await this.codec.encode('flag', flag),
        headers: { 'fairflag-flag-id': flag.flagId, 'fairflag-revision': String(flag.revision) },
      })),
    );
    const deadMessages = await Promise.all(dead.map((d) => this.deadLetterMessage(d)));
    const topicMessages = [
      ...(flagMessages.length ? [{ topic: flagsTopic, messages: flagMessages }] : []),
      ...(deadMessages.length ? [{ topic: this.config.topics.deadLetter, messages: deadMessages }] : []),
    ];
    if (topicMessages.length) await this.producer.sendBatch({ topicMessages, acks: -1 });
    const flagsOnTopic = Date.now();
    await this.engine.commit(result);
    if (this.opts.onBatchWritten) {
      const producedAt = new Map(good.map((g) => [g.event.event.eventId, Number(g.message.timestamp)]));
      this.opts.onBatchWritten({
        startedAt,
        begunAt,
        producedAt: [...producedAt.values()],
        featuresWrittenAt: written,
        flags: result.emissions.map(({ flag }) => ({
          triggeredAt: producedAt.get(flag.triggeringEventId) ?? flagsOnTopic,
          producedAt: flagsOnTopic,
        })),
      });
    }

    // counted once the batch's effects are all written
    let late = 0;
    for (const o of result.outcomes) {
      if (o.lateFor.length) late++;
      for (const e of o.evaluations)
        if (e.evaluation.status === 'fired') this.metrics.signalFired.inc({ signal: e.signalId });
    }
    for (const g of good)
      this.metrics.latency.observe(Math.max(0, written - Number(g.message.timestamp)) / 1000);
    for (const d of dead) this.metrics.deadLetters.inc({ reason: d.reason });
    for (const { flag } of result.emissions)
      this.metrics.flags.inc({ queue: flag.reviewQueue, severity: flag.severity });
    this.metrics.events.inc({ topic: batch.topic, outcome: 'processed' }, good.length - late);
    this.metrics.events.inc({ topic: batch.topic, outcome: 'late' }, late);
    this.metrics.events.inc({ topic: batch.topic, outcome: 'dead_lettered' }, dead.length);
    this.metrics.lateEvents.inc(late);
    this.counts.processed += good.length;
    this.counts.late += late;
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
  }

  private async handleOutcomes(batch: Batch): Promise<void> {
    const dead: DeadLetter[] = [];
    for (const message of batch.messages) {
      const fail = (reason: DeadLetterReason, detail: string) =>
        dead.push({ reason, detail, message, topic: batch.topic, partition: batch.partition });
      if (!message.value?.length) {
        fail('not_wire_format', 'empty message value');
        continue;
      }
      // the same size limit as activity input (it was not applied here: a 1 MB outcome was decoded)
      const limit = this.config.validation.maxPayloadBytes;
      if (message.value.length > limit) {
        fail(
          'oversized',
          `payload of ${message.value.length} bytes exceeds validation.maxPayloadBytes (${limit})`,
        );
        continue;
      }
      let outcome;
      try {
        outcome = validateOutcome(
          await this.codec.decodeAs('reviewOutcome', message.value),
          this.config.validation,
        );
      } catch (err) {
        if (err instanceof DecodeError) fail(err.reason, err.message);
        else if (err instanceof InvalidEventError) fail('invalid_field', err.message);
        else throw err;
        continue;
      }
      const closed = await this.engine.applyOutcome(outcome);
      if (closed) {
        for (const s of closed.state.signals)
          this.metrics.reviewOutcomes.inc({ signal: s.signalId, outcome: outcome.outcome });
        this.log.info(
          { flagId: outcome.flagId, outcome: outcome.outcome, queue: closed.queue },
          'flag closed by review',
        );
      }
      this.counts.outcomes++;
    }
    if (dead.length) {
      await this.producer.send({
        topic: this.config.topics.deadLetter,
        acks: -1,
        messages: await Promise.all(dead.map((d) => this.deadLetterMessage(d))),
      });
      for (const d of dead) this.metrics.deadLetters.inc({ reason: d.reason });
      this.counts.deadLettered += dead.length;
    }
  }

  private async deadLetterMessage(d: DeadLetter) {
    const headers = Object.entries(d.message.headers ?? ({} as IHeaders)).flatMap(([key, v]) =>
      (Array.isArray(v) ? v : [v]).map((one) => ({
        key,
        value: one === undefined ? null : Buffer.isBuffer(one) ? one : Buffer.from(String(one)),
      })),
    );
    const record = {
      reason: d.reason,
      detail: d.detail,
      sourceTopic: d.topic,
      sourcePartition: d.partition,
      sourceOffset: d.message.offset,
      sourceTimestamp: d.message.timestamp ?? null,
      key: d.message.key ?? null,
      value: d.message.value ?? null,
      headers,
      failedAt: Date.now(),
      processorVersion: PROCESSOR_VERSION,
    };
    this.log.warn(
      {
        reason: d.reason,
        detail: d.detail,
        topic: d.topic,
        partition: d.partition,
        offset: d.message.offset,
      },
      'dead-lettered',
    );
    return {
      key: d.message.key ?? null,
      value: await this.codec.encode('deadLetter', record),
      headers: { 'fairflag-reason': d.reason },
    };
  }

  /**
   * Loads the config again. A valid one takes effect between batches; an invalid one is rejected
   * with its errors and the running one stays.
   */
  reload(): { applied: boolean; version?: string; problems?: string[] } {
    try {
      const loaded = loadConfig(this.opts.reloadWith ?? {});
      this.pendingPolicy = compilePolicy(loaded);
      this.loaded = loaded;
      this.metrics.configReloads.inc({ result: 'applied' });
      this.log.info(
        { configVersion: loaded.version, previous: this.policy.version },
        'config reloaded; applies from the next batch',
      );
      return { applied: true, version: loaded.version };
    } catch (err) {
      const problems = (err as { problems?: string[] }).problems ?? [(err as Error).message];
      this.metrics.configReloads.inc({ result: 'rejected' });
      this.log.error(
        { problems, keeping: this.policy.version },
        'config reload rejected; keeping the running config',
      );
      return { applied: false, problems };
    }
  }

  private applyPendingPolicy(): void {
    if (!this.pendingPolicy) return;
    this.policy = this.pendingPolicy;
    this.pendingPolicy = undefined;
    this.store.setLayout(this.policy.layout);
  }

  /** Finishes the in-flight batches, commits, disconnects. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('stopping: finishing in-flight batches');
    await this.consumer?.disconnect();
    await this.admin?.disconnect();
    await this.producer?.disconnect();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    this.redis.disconnect();
    this.log.info(this.counts, 'stopped');
  }
}
