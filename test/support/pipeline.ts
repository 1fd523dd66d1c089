// A running processor plus the tools to feed it and read what it wrote, for integration tests.
import type { Redis } from 'ioredis';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { ActivityEvent } from '../../src/domain/events.js';
import type { ReviewFlag } from '../../src/domain/flags.js';
import { Processor, kafkaClient } from '../../src/kafka/processor.js';
import {
  endOffsets,
  publishActivity,
  readRange,
  waitForCatchUp,
  type Offsets,
} from '../../src/kafka/topic-tools.js';
import type { LoadedConfig, LoadOptions } from '../../src/runtime/config-loader.js';
import { createLogger } from '../../src/runtime/logger.js';

/** A record of the dead-letter topic as decoded (schemas/dead-letter.avsc). */
export interface DeadLetterRecord {
  reason: string;
  detail: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  sourceTimestamp: string | null;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
  failedAt: number;
  processorVersion: string;
  /** Set when key, value or headers are only the first part of the original. */
  truncated?: {
    keyBytes: number;
    valueBytes: number;
    headerCount: number;
    headerBytes: number;
    keySha256: string | null;
    valueSha256: string | null;
  } | null;
}

export class Harness {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly producer: Producer;
  proc!: Processor;
  private readonly marks = new Map<string, Offsets>();

  /** `http`: serve /livez, /readyz and /metrics on the config's http.port (off by default). */
  constructor(
    readonly loaded: LoadedConfig,
    private readonly opts: { http?: boolean; reloadWith?: LoadOptions } = {},
  ) {
    const log = createLogger('fairflag-test');
    log.level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'error';
    this.kafka = kafkaClient(loaded.config.kafka, log, '-test');
    this.admin = this.kafka.admin();
    this.producer = this.kafka.producer();
  }

  get config() {
    return this.loaded.config;
  }
  get topics() {
    return this.loaded.config.topics;
  }
  get inputTopics(): string[] {
    const t = this.topics;
    return [t.login, t.ip, t.paymentMethod, t.contract, t.account, t.reviewOutcomes, t.counterparts];
  }

  async start(): Promise<this> {
    await Promise.all([this.admin.connect(), this.producer.connect()]);
    await this.startProcessor();
    for (const t of [this.topics.flags, this.topics.deadLetter, this.topics.shadowFlags])
      this.marks.set(t, await endOffsets(this.admin, t));
    return this;
  }

  async startProcessor(): Promise<Processor> {
    const log = createLogger('fairflag-test');
    log.level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'error';
    this.proc = await Processor.start({
      loaded: this.loaded,
      log,
      http: this.opts.http ?? false,
      ...(this.opts.reloadWith && { reloadWith: this.opts.reloadWith }),
    });
    return this.proc;
  }

  async publish(events: ActivityEvent[]): Promise<void> {
    await publishActivity(this.producer, this.proc.codec, this.topics, events);
  }

  async publishRaw(
    topic: string,
    messages: { key?: string; value: Buffer; headers?: Record<string, string> }[],
  ) {
    await this.producer.send({ topic, acks: -1, messages });
  }

  /** Waits until the processor has committed everything published so far. */
  async settle(timeoutMs = 60_000): Promise<void> {
    await waitForCatchUp(this.admin, this.config.kafka.groupId, this.inputTopics, timeoutMs);
  }

  /** Publishes phase by phase, settling after each, as years separate a scenario's history from today. */
  async publishPhases(phases: ActivityEvent[][]): Promise<void> {
    for (const phase of phases) {
      await this.publish(phase);
      await this.settle();
    }
  }

  private async readSince(topic: string): Promise<Buffer[]> {
    const to = await endOffsets(this.admin, topic);
    const messages = await readRange(this.kafka, topic, this.marks.get(topic) ?? new Map(), to);
    return messages.map((m) => m.value!);
  }

  /** The flag messages' bytes as produced, in topic order per partition. */
  async flagBytes(): Promise<Buffer[]> {
    return this.readSince(this.topics.flags);
  }

  async flags(): Promise<ReviewFlag[]> {
    const values = await this.readSince(this.topics.flags);
    return Promise.all(values.map(async (v) => (await this.proc.codec.decodeAny(v)) as ReviewFlag));
  }

  /** A shadow candidate's would-be flags, as produced to the shadow topic. */
  async shadowFlags(): Promise<ReviewFlag[]> {
    const values = await this.readSince(this.topics.shadowFlags);
    return Promise.all(values.map(async (v) => (await this.proc.codec.decodeAny(v)) as ReviewFlag));
  }

  async deadLetters(): Promise<DeadLetterRecord[]> {
    const values = await this.readSince(this.topics.deadLetter);
    return Promise.all(values.map(async (v) => (await this.proc.codec.decodeAny(v)) as DeadLetterRecord));
  }

  /**
   * Every state key under this test's prefix with its contents (an account's encoded features as
   * base64, an entity's members with their scores), for before/after comparisons.
   */
  async dumpKeys(): Promise<Record<string, unknown>> {
    const redis = this.proc.redis;
    const prefix = this.config.redis.keyPrefix;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await (redis as Redis).scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    const out: Record<string, unknown> = {};
    for (const key of keys.sort()) {
      const type = await redis.type(key);
      out[key] =
        type === 'zset'
          ? await redis.zrange(key, 0, -1, 'WITHSCORES')
          : type === 'hash'
            ? await redis.hgetall(key)
            : (await redis.getBuffer(key))?.toString('base64');
    }
    return out;
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    await Promise.allSettled([this.producer.disconnect(), this.admin.disconnect()]);
  }
}
