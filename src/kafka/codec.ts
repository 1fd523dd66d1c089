// Confluent wire format through a Confluent-compatible registry. schemas/*.avsc are the source of
// truth: registered on start under "<topic>-value", and the registry's ids go on the wire.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { Config } from '../../config/schema.js';
import type { Family, ReviewOutcome } from '../domain/events.js';
import type { ReviewFlag } from '../domain/flags.js';
import { PROJECT_ROOT } from '../runtime/project.js';
import { checkAvroBounds, hasCollections } from './avro-bounds.js';

/** Every schema fairflag owns, by the role of its topic. */
export const SCHEMA_FILES = {
  login: 'login.avsc',
  ip: 'ip.avsc',
  payment: 'payment-method.avsc',
  contract: 'contract.avsc',
  account: 'account.avsc',
  reviewOutcome: 'review-outcome.avsc',
  flag: 'review-flag.avsc',
  deadLetter: 'dead-letter.avsc',
} as const;
export type SchemaRole = keyof typeof SCHEMA_FILES;

export function readSchema(role: SchemaRole): { text: string; fullName: string } {
  const text = readFileSync(join(PROJECT_ROOT, 'schemas', SCHEMA_FILES[role]), 'utf8');
  const parsed = JSON.parse(text) as { name: string; namespace: string };
  return { text, fullName: `${parsed.namespace}.${parsed.name}` };
}

export function topicOf(role: SchemaRole, topics: Config['topics']): string {
  const map: Record<SchemaRole, string> = {
    login: topics.login,
    ip: topics.ip,
    payment: topics.paymentMethod,
    contract: topics.contract,
    account: topics.account,
    reviewOutcome: topics.reviewOutcomes,
    flag: topics.flags,
    deadLetter: topics.deadLetter,
  };
  return map[role];
}

/** Why an input message could not be decoded; the reason is the DLQ's machine-readable code. */
export class DecodeError extends Error {
  constructor(
    readonly reason:
      'not_wire_format' | 'unknown_schema_id' | 'unsupported_schema' | 'wrong_schema' | 'undecodable',
    detail: string,
  ) {
    super(detail);
    this.name = 'DecodeError';
  }
}

type RegistryMiddleware = NonNullable<ConstructorParameters<typeof SchemaRegistry>[0]['middlewares']>[number];

/**
 * A time limit on every registry request. The client sets none of its own, and its HTTP layer
 * (mappersmith) takes one per request: without it a registry that accepts connections but never
 * answers held a batch for good.
 */
const requestTimeout =
  (ms: number): RegistryMiddleware =>
  () => ({
    prepareRequest: async (next) => (await next()).enhance({ timeout: ms }),
  });

/** The registry could not be asked (down, timing out): retry later, never dead-letter. */
export class RegistryUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryUnavailableError';
  }
}

type AvroLike = avro.Type & { name?: string };

// Unknown ids are remembered briefly so hostile input cannot turn into a registry request storm.
const UNKNOWN_ID_TTL_MS = 60_000;

export class Codec {
  private readonly ids = new Map<SchemaRole, number>();
  private readonly fullNames = new Map<SchemaRole, string>();
  private readonly unknownIds = new Map<number, number>();
  /** The topic's own schema (schemas/*.avsc) per role: what every decoded record must look like. */
  private readonly readers = new Map<SchemaRole, avro.Type>();
  /**
   * How to read a writer's schema id as a role's own schema (or why it cannot be), and whether
   * the writer has an array or map somewhere: then its data is walked with bounds first.
   */
  private readonly resolvers = new Map<string, { resolver: avro.Resolver; bounded: boolean } | DecodeError>();

  private constructor(
    readonly registry: SchemaRegistry,
    private readonly topics: Config['topics'],
  ) {}

  /** Connects and registers every schema, retrying until `timeoutMs` with a log line per attempt. */
  static async connect(
    cfg: Pick<Config, 'registry' | 'topics'>,
    log: (msg: string) => void = () => {},
  ): Promise<Codec> {
    const registry = new SchemaRegistry(
      {
        host: cfg.registry.url,
        clientId: 'fairflag',
        retry: { retries: 1 },
        middlewares: [requestTimeout(cfg.registry.requestTimeout)],
      },
      { [SchemaType.AVRO]: {} },
    );
    const codec = new Codec(registry, cfg.topics);
    const deadline = Date.now() + cfg.registry.startupTimeout;
    for (let attempt = 1; ; attempt++) {
      try {
        await codec.registerAll();
        return codec;
      } catch (err) {
        const msg = (err as Error).message;
        if (Date.now() > deadline) {
          throw new RegistryUnavailableError(
            `schema registry at ${cfg.registry.url} not usable after ${attempt} attempts: ${msg}`,
            { cause: err },
          );
        }
        log(`schema registry at ${cfg.registry.url} not ready (attempt ${attempt}: ${msg}); retrying`);
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  private async registerAll(): Promise<void> {
    for (const role of Object.keys(SCHEMA_FILES) as SchemaRole[]) {
      const { text, fullName } = readSchema(role);
      const { id } = await this.registry.register(
        { type: SchemaType.AVRO, schema: text },
        { subject: `${topicOf(role, this.topics)}-value` },
      );
      this.ids.set(role, id);
      this.fullNames.set(role, fullName);
    }
  }

  idOf(role: SchemaRole): number {
    const id = this.ids.get(role);
    if (id === undefined) throw new Error(`schema ${role} not registered`);
    return id;
  }

  async encode(role: 'flag', value: ReviewFlag): Promise<Buffer>;
  async encode(role: 'reviewOutcome', value: ReviewOutcome): Promise<Buffer>;
  async encode(role: SchemaRole, value: unknown): Promise<Buffer>;
  async encode(role: SchemaRole, value: unknown): Promise<Buffer> {
    return this.registry.encode(this.idOf(role), value);
  }

  /** Decodes any fairflag message by its own schema id (for tests, tools and the DLQ reader). */
  async decodeAny(buf: Buffer): Promise<unknown> {
    return this.registry.decode(buf);
  }

  /**
   * Decodes an input message and checks it was written with the topic's own record type.
   * Throws DecodeError (dead-letter it) or RegistryUnavailableError (retry).
   */
  async decodeAs(role: SchemaRole, buf: Buffer): Promise<unknown> {
    if (buf.length < 5 || buf[0] !== 0) {
      throw new DecodeError(
        'not_wire_format',
        `not in Confluent wire format (${buf.length} bytes, first byte ${buf[0] ?? 'none'})`,
      );
    }
    const id = buf.readInt32BE(1);
    const type = await this.writerType(id);
    const expected = this.fullNames.get(role);
    if (type.name !== expected) {
      throw new DecodeError(
        'wrong_schema',
        `schema id ${id} is ${type.name ?? 'unnamed'}, this topic carries ${expected}`,
      );
    }
    // Read with the topic's own schema as the reader, resolved against the writer's: a record of
    // the right name but another shape (a field missing or of another type) must be refused here.
    // Decoded with the writer's schema alone it reached validation with fields missing, threw a
    // TypeError there instead of a DecodeError, and its batch was retried forever.
    const { resolver, bounded } = this.resolverFor(role, id, type);
    const payload = buf.subarray(5);
    try {
      // avsc trusts a collection's item count: bound it by the message first (avro-bounds.ts)
      if (bounded) checkAvroBounds(type, payload);
      return this.readerOf(role).fromBuffer(payload, resolver);
    } catch (err) {
      throw new DecodeError(
        'undecodable',
        `Avro payload does not match schema id ${id}: ${(err as Error).message}`,
      );
    }
  }

  private readerOf(role: SchemaRole): avro.Type {
    let reader = this.readers.get(role);
    if (!reader) {
      reader = avro.Type.forSchema(JSON.parse(readSchema(role).text) as avro.Schema);
      this.readers.set(role, reader);
    }
    return reader;
  }

  private resolverFor(
    role: SchemaRole,
    id: number,
    writer: AvroLike,
  ): { resolver: avro.Resolver; bounded: boolean } {
    const key = `${role}:${id}`;
    let r = this.resolvers.get(key);
    if (!r) {
      try {
        r = { resolver: this.readerOf(role).createResolver(writer), bounded: hasCollections(writer) };
      } catch (err) {
        r = new DecodeError(
          'wrong_schema',
          `schema id ${id} (${writer.name ?? 'unnamed'}) cannot be read as this topic's ${this.fullNames.get(role)}: ${(err as Error).message}`,
        );
      }
      if (this.resolvers.size > 10_000) this.resolvers.clear();
      this.resolvers.set(key, r);
    }
    if (r instanceof DecodeError) throw r;
    return r;
  }

  private async writerType(id: number): Promise<AvroLike> {
    const seen = this.unknownIds.get(id);
    if (seen !== undefined && Date.now() - seen < UNKNOWN_ID_TTL_MS) {
      throw new DecodeError('unknown_schema_id', `schema id ${id} is not in the registry`);
    }
    try {
      return (await this.registry.getSchema(id)) as unknown as AvroLike;
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 404) {
        if (this.unknownIds.size > 10_000) this.unknownIds.clear();
        this.unknownIds.set(id, Date.now());
        throw new DecodeError('unknown_schema_id', `schema id ${id} is not in the registry`);
      }
      throw new RegistryUnavailableError(
        `schema registry lookup of id ${id} failed: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Family of an input topic, or undefined for topics fairflag does not read as activity. */
  familyOfTopic(topic: string): Family | undefined {
    const t = this.topics;
    const map: Record<string, Family> = {
      [t.login]: 'login',
      [t.ip]: 'ip',
      [t.paymentMethod]: 'payment',
      [t.contract]: 'contract',
      [t.account]: 'account',
    };
    return map[topic];
  }
}
