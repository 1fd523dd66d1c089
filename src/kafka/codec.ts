// Confluent wire format through a Confluent-compatible registry. schemas/*.avsc are fairflag's
// versions: registered on start under "<topic>-value" for the topics it writes, and the readers of
// the topics it reads, whose subjects are checked on start (subjects.ts, docs/schemas.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType, type COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { LRUCache } from 'lru-cache';
import {
  COMPATIBILITY_LEVELS,
  type CompatibilityLevel,
  type Config,
  type TOPIC_KEYS_WITH_SCHEMAS,
} from '../../config/schema.js';
import type { Family, ReviewOutcome } from '../domain/events.js';
import type { ReviewFlag } from '../domain/flags.js';
import { PROJECT_ROOT } from '../runtime/project.js';
import { checkAvroBounds, hasCollections } from './avro-bounds.js';
import {
  PRODUCED_ROLES,
  SchemaSubjectError,
  idUnderSubject,
  levelFor,
  readability,
  satisfies,
  setSubjectLevel,
  subjectLevel,
  subjectVersions,
  type RegistryRequest,
} from './subjects.js';

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

/** The config.topics key of each role's topic. */
export const TOPIC_KEY: Record<SchemaRole, (typeof TOPIC_KEYS_WITH_SCHEMAS)[number]> = {
  login: 'login',
  ip: 'ip',
  payment: 'paymentMethod',
  contract: 'contract',
  account: 'account',
  reviewOutcome: 'reviewOutcomes',
  flag: 'flags',
  deadLetter: 'deadLetter',
};

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

/**
 * One request (a GET unless `init` says otherwise) to the registry's Confluent-compatible API,
 * within `requestTimeout`. Credentials in the URL (http://user:pass@host) become a basic
 * Authorization header (fetch refuses them in the URL).
 */
async function registryFetch(
  cfg: Config['registry'],
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<Response> {
  const url = new URL(cfg.url.replace(/\/+$/, '') + path);
  const headers: Record<string, string> = {
    accept: 'application/vnd.schemaregistry.v1+json, application/json',
    ...(init.body !== undefined && { 'content-type': 'application/vnd.schemaregistry.v1+json' }),
  };
  if (url.username || url.password) {
    headers['authorization'] =
      'Basic ' +
      Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString(
        'base64',
      );
    url.username = '';
    url.password = '';
  }
  return fetch(url, {
    headers,
    signal: AbortSignal.timeout(cfg.requestTimeout),
    ...(init.method !== undefined && { method: init.method }),
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
  });
}

/** The registry could not be asked (down, timing out): retry later, never dead-letter. */
export class RegistryUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryUnavailableError';
  }
}

type AvroLike = avro.Type & { name?: string };

/** What one registry lookup of a writer's schema id found (fairflag_registry_lookups_total). */
export type LookupResult = 'found' | 'unknown' | 'unsupported' | 'failed';

/** A registry's answer for GET /schemas/ids/{id}. */
interface SchemaById {
  schema?: unknown;
  schemaType?: string;
  references?: unknown[];
}

export class Codec {
  private readonly ids = new Map<SchemaRole, number>();
  private readonly fullNames = new Map<SchemaRole, string>();
  /** Writers' schemas by registry id: fairflag's own (never evicted), and others seen since start. */
  private readonly own = new Map<number, AvroLike>();
  private readonly usable = new LRUCache<number, AvroLike>({ max: 1_000 });
  /**
   * Ids the registry does not know, or whose schema fairflag cannot use, with why: remembered for
   * `registry.rejectedIdTtl`, so a flood of hostile ids costs one lookup per id and TTL, and
   * bounded (least recently used go first), so it cannot grow without end.
   */
  private readonly rejected: LRUCache<number, DecodeError>;
  /** Lookups in flight: parallel batches asking for one id make one request. */
  private readonly inFlight = new Map<number, Promise<AvroLike>>();
  /** The topic's own schema (schemas/*.avsc) per role: what every decoded record must look like. */
  private readonly readers = new Map<SchemaRole, avro.Type>();
  /**
   * How to read a writer's schema id as a role's own schema (or why it cannot be), and whether
   * the writer has an array or map somewhere: then its data is walked with bounds first.
   */
  private readonly resolvers = new LRUCache<
    string,
    { resolver: avro.Resolver; bounded: boolean } | DecodeError
  >({ max: 10_000 });
  /** Registry lookups of writers' ids so far, by result. */
  readonly lookups: Record<LookupResult, number> = { found: 0, unknown: 0, unsupported: 0, failed: 0 };
  /** Told of every registry lookup (the processor counts them in its metrics). */
  onLookup: ((result: LookupResult) => void) | undefined;

  private constructor(
    readonly registry: SchemaRegistry,
    private readonly topics: Config['topics'],
    private readonly registryCfg: Config['registry'],
  ) {
    this.rejected = new LRUCache<number, DecodeError>({
      max: registryCfg.rejectedIds,
      ttl: registryCfg.rejectedIdTtl,
    });
  }

  /**
   * Connects, sets the level of and registers the subjects fairflag owns (flags, dead letters,
   * and every input too with registry.registerInputSubjects), checks the input subjects (see
   * subjects.ts) and adds its version to those it `produces` as well (bootstrap). An unreachable
   * registry is retried until `startupTimeout`, with a log line per attempt; a subject that is
   * not as required fails at once with a SchemaSubjectError.
   */
  static async connect(
    cfg: Pick<Config, 'registry' | 'topics'>,
    log: (msg: string) => void = () => {},
    opts: { produces?: readonly SchemaRole[] } = {},
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
    const codec = new Codec(registry, cfg.topics, cfg.registry);
    const deadline = Date.now() + cfg.registry.startupTimeout;
    for (let attempt = 1; ; attempt++) {
      try {
        await codec.prepareSubjects(opts.produces ?? []);
        return codec;
      } catch (err) {
        if (err instanceof SchemaSubjectError) throw err;
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

  private async prepareSubjects(produces: readonly SchemaRole[]): Promise<void> {
    const request: RegistryRequest = (path, init) => registryFetch(this.registryCfg, path, init);
    for (const role of Object.keys(SCHEMA_FILES) as SchemaRole[]) {
      const { text, fullName } = readSchema(role);
      this.fullNames.set(role, fullName);
      const subject = `${topicOf(role, this.topics)}-value`;
      const level = levelFor(TOPIC_KEY[role], this.registryCfg);
      const setting = `registry.subjectCompatibility.${TOPIC_KEY[role]} or registry.compatibility`;
      if (
        (PRODUCED_ROLES as readonly SchemaRole[]).includes(role) ||
        this.registryCfg.registerInputSubjects
      ) {
        // fairflag's own subject: set the level first, so that the registry checks this version
        // against the level it will keep
        await setSubjectLevel(request, subject, level);
        await this.registerOwn(role, subject, level);
        const kept = await subjectLevel(request, subject);
        if (kept !== level)
          throw new SchemaSubjectError(
            `subject ${subject} has compatibility ${kept} after fairflag set ${level} (${setting}): the registry did not keep it`,
          );
        continue;
      }
      const actual = await this.checkInputSubject(request, role, subject, level, setting, text);
      // a tool that writes an input topic too (bootstrap) adds its version under the producers'
      // own level, which it leaves as it is
      if (produces.includes(role) && !this.ids.has(role)) await this.registerOwn(role, subject, actual);
    }
  }

  /** Registers fairflag's schema of a role under its subject, whose level is `level`. */
  private async registerOwn(role: SchemaRole, subject: string, level: CompatibilityLevel): Promise<void> {
    const { text } = readSchema(role);
    let id: number;
    try {
      ({ id } = await this.registry.register(
        { type: SchemaType.AVRO, schema: text },
        { subject, compatibility: level as COMPATIBILITY },
      ));
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 409)
        throw new SchemaSubjectError(
          `schemas/${SCHEMA_FILES[role]} is not ${level} compatible with the versions registered under ${subject}, so the registry refused it (docs/schemas.md: moving a registry to these schemas): ${(err as Error).message}`,
        );
      // the registry's own verdict on the schema (invalid, not allowed): asking again will not help
      if (status === 422)
        throw new SchemaSubjectError(
          `the registry refused schemas/${SCHEMA_FILES[role]} under ${subject}: ${(err as Error).message}`,
        );
      throw err;
    }
    this.ids.set(role, id);
    // known without asking again: decoding goes on while the registry is down
    this.own.set(id, avro.Type.forSchema(JSON.parse(text) as avro.Schema) as AvroLike);
  }

  /**
   * An input subject its producers own: it must exist, be at least as strict as configured, and
   * hold only versions fairflag's schema can read. The versions' writers are kept (decoding goes
   * on while the registry is down), and fairflag's own schema id when it is one of them (encode).
   */
  private async checkInputSubject(
    request: RegistryRequest,
    role: SchemaRole,
    subject: string,
    level: CompatibilityLevel,
    setting: string,
    text: string,
  ): Promise<CompatibilityLevel> {
    const versions = await subjectVersions(request, subject);
    if (!versions?.length)
      throw new SchemaSubjectError(
        `input subject ${subject} is not in the schema registry: fairflag reads ${topicOf(role, this.topics)} but does not register its schema unless registry.registerInputSubjects is true (the producers register it; a local stack, the demo and tests set the option)`,
      );
    const actual = await subjectLevel(request, subject);
    if (
      !(COMPATIBILITY_LEVELS as readonly string[]).includes(actual) ||
      !satisfies(actual as CompatibilityLevel, level)
    )
      throw new SchemaSubjectError(
        `input subject ${subject} has compatibility ${actual}, fairflag requires ${level} or stricter (${setting}): set it on the registry (PUT /config/${subject}) or configure the level this subject has`,
      );
    const problems: string[] = [];
    for (const v of versions) {
      const r = readability(this.readerOf(role), v);
      if ('problem' in r) problems.push(`version ${v.version} (id ${v.id}) ${r.problem}`);
      else this.own.set(v.id, r.writer as AvroLike);
    }
    if (problems.length)
      throw new SchemaSubjectError(
        `input subject ${subject} has versions fairflag cannot read as schemas/${SCHEMA_FILES[role]}: ${problems.join('; ')}`,
      );
    const id = await idUnderSubject(request, subject, text);
    if (id !== undefined) this.ids.set(role, id);
    return actual as CompatibilityLevel;
  }

  idOf(role: SchemaRole): number {
    const id = this.ids.get(role);
    if (id === undefined)
      throw new Error(
        `schemas/${SCHEMA_FILES[role]} is not registered under ${topicOf(role, this.topics)}-value, so fairflag cannot write it (registry.registerInputSubjects registers it)`,
      );
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
    if (r === undefined) {
      try {
        r = { resolver: this.readerOf(role).createResolver(writer), bounded: hasCollections(writer) };
      } catch (err) {
        r = new DecodeError(
          'wrong_schema',
          `schema id ${id} (${writer.name ?? 'unnamed'}) cannot be read as this topic's ${this.fullNames.get(role)}: ${(err as Error).message}`,
        );
      }
      this.resolvers.set(key, r);
    }
    if (r instanceof DecodeError) throw r;
    return r;
  }

  /**
   * The writer's schema of an id: from memory, or asked of the registry once. Throws DecodeError
   * for an id the registry does not know (unknown_schema_id) or whose schema fairflag cannot use
   * (unsupported_schema: not Avro, references, not compilable), remembered for the TTL; and
   * RegistryUnavailableError when the registry cannot answer (down, timing out, 5xx): retried.
   */
  private async writerType(id: number): Promise<AvroLike> {
    const known = this.own.get(id) ?? this.usable.get(id);
    if (known) return known;
    const refused = this.rejected.get(id);
    if (refused) throw refused;
    let pending = this.inFlight.get(id);
    if (!pending) {
      pending = this.lookUp(id).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, pending);
    }
    return pending;
  }

  private async lookUp(id: number): Promise<AvroLike> {
    const counted = (result: LookupResult) => {
      this.lookups[result]++;
      this.onLookup?.(result);
    };
    let body: SchemaById;
    try {
      const res = await registryFetch(this.registryCfg, `/schemas/ids/${id}`);
      if (res.status === 404) {
        await res.body?.cancel();
        counted('unknown');
        throw this.refuse(id, new DecodeError('unknown_schema_id', `schema id ${id} is not in the registry`));
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
      body = (await res.json()) as SchemaById;
    } catch (err) {
      if (err instanceof DecodeError) throw err;
      counted('failed');
      throw new RegistryUnavailableError(
        `schema registry lookup of id ${id} failed: ${(err as Error).name}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const unsupported = (why: string) => {
      counted('unsupported');
      return this.refuse(id, new DecodeError('unsupported_schema', `schema id ${id} ${why}`));
    };
    const type = body.schemaType ?? 'AVRO';
    // fairflag's topics carry Avro: a JSON or Protobuf schema is never compiled (nor trusted to)
    if (type !== 'AVRO')
      throw unsupported(
        `is a ${type} schema; fairflag's topics carry Avro records in the Confluent wire format`,
      );
    if (body.references?.length)
      throw unsupported(
        `refers to other schemas (${body.references.length}), which fairflag does not resolve`,
      );
    if (typeof body.schema !== 'string') throw unsupported('has no schema text in the registry');
    let writer: AvroLike;
    try {
      writer = avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema) as AvroLike;
    } catch (err) {
      throw unsupported(`cannot be compiled as Avro: ${(err as Error).message.slice(0, 300)}`);
    }
    counted('found');
    this.usable.set(id, writer);
    return writer;
  }

  /**
   * Looks up, a few at a time, the writers' ids among these messages that are neither known nor
   * refused yet: a batch of many distinct ids then waits for the slowest few lookups, not for all
   * of them one after the other. What a lookup finds is remembered; its errors are not thrown here.
   */
  async warm(values: readonly (Buffer | null)[], concurrency = 8): Promise<void> {
    const ids = new Set<number>();
    for (const v of values) {
      if (!v || v.length < 5 || v[0] !== 0) continue;
      const id = v.readInt32BE(1);
      if (!this.own.has(id) && !this.usable.has(id) && !this.rejected.has(id)) ids.add(id);
    }
    if (ids.size < 2) return;
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift())
        await this.writerType(id).catch(() => undefined);
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
  }

  private refuse(id: number, err: DecodeError): DecodeError {
    this.rejected.set(id, err);
    return err;
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
