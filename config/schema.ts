// Validation of the effective config. Every object is strict: an unknown key is an error, so
// nothing can be added that the code does not understand, least of all another action.
import { z } from 'zod';
import { SIGNALS } from '../processors/registry.js';
import { SIGNAL_FAMILIES } from '../src/domain/signal.js';
import { duration, factor, flag, nonNegativeInt, positiveInt, positiveNumber, text } from './params.js';

/** Confluent compatibility levels (also what Apicurio's ccompat API accepts). */
export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];
const compatibilityLevel = z.enum(COMPATIBILITY_LEVELS, {
  error: `expected one of ${COMPATIBILITY_LEVELS.join(', ')}`,
});

/** The topics (config.topics keys) whose values are Avro records under "<topic>-value". */
export const TOPIC_KEYS_WITH_SCHEMAS = [
  'login',
  'ip',
  'paymentMethod',
  'contract',
  'account',
  'reviewOutcomes',
  'flags',
  'deadLetter',
] as const;
/** SASL mechanisms fairflag can authenticate to Kafka with (kafkajs's names, lower case). */
export const SASL_MECHANISMS = ['none', 'plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;

/** The only action fairflag can express. There is deliberately no other value anywhere. */
export const REVIEW_ACTION = 'review' as const;

const signalsSchema = z.strictObject(
  Object.fromEntries(
    SIGNAL_FAMILIES.map((family) => [
      family,
      z.strictObject(
        Object.fromEntries(
          SIGNALS.filter((s) => s.family === family).map((s) => [s.id.slice(family.length + 1), s.params]),
        ),
      ),
    ]),
  ),
);

const mitigation = <T extends z.ZodRawShape>(extra: T) =>
  z.strictObject({
    enabled: flag().default(true),
    factor: factor(),
    /** The review queues (concerns) it dampens; elsewhere it is listed as not applicable. */
    appliesTo: z
      .array(text(), { error: 'expected a list of review queues' })
      .min(1, { error: 'expected at least one review queue (disable it with enabled: false)' }),
    ...extra,
  });

const notice = z.strictObject(
  {
    category: text(),
    text: text(),
    howToResolve: text(),
  },
  { error: 'expected a notice with category, text and howToResolve' },
);

export const configSchema = z
  .strictObject({
    kafka: z.strictObject({
      brokers: z
        .array(text(), { error: 'expected a list of host:port' })
        .min(1, { error: 'expected at least one broker' }),
      clientId: text().default('fairflag'),
      groupId: text().default('fairflag-processor'),
      /**
       * Batches in flight at once, at most one per partition. Each batch waits on Redis and Kafka
       * several times, so one per input partition keeps the CPU busy (bench: 15 vs 3 gave +47%).
       */
      partitionsConsumedConcurrently: positiveInt().default(16),
      sessionTimeout: duration().default(30_000),
      /**
       * How long a fetch waits at the broker for data. A consumer in such a wait notices a
       * rebalance, and a stopping one leaves, only when it returns: kafkajs's 5 s made every
       * join and stop of an idle member wait that long. Kafka's own clients wait 500 ms.
       */
      maxWaitTime: duration().default(500),
      /**
       * Fetch sizes bound how many messages wait in memory and how big a batch gets: a backlog is
       * read in steps, not all at once (maxBytes caps a whole fetch). A single larger message is
       * still fetched whole. Each batch writes its changed accounts and entities once, so bigger
       * batches mean fewer Redis commands and account writes per event; at 1 MiB the fetches
       * left the processor waiting (docs/benchmarks.md).
       */
      maxBytesPerPartition: positiveInt().default(256 * 1024),
      maxBytes: positiveInt().default(4 * 1024 * 1024),
      /**
       * Where a consumer group with no committed offset starts: earliest reads the whole retained
       * history of the topics, latest only what arrives after it joined.
       */
      /**
       * How often the group's lag (committed offsets against the partitions' ends) is measured,
       * for every partition of the consumed topics, whoever owns it.
       */
      lagInterval: duration().default(15_000),
      offsetReset: z
        .enum(['earliest', 'latest'], { error: 'expected earliest or latest' })
        .default('earliest'),
      /** TLS to the brokers; caFile trusts a private CA (else Node's own CA list). */
      ssl: z
        .strictObject({
          enabled: flag().default(false),
          caFile: text().nullable().default(null),
          /** A client certificate and its key, for brokers that ask for one (mutual TLS). */
          certFile: text().nullable().default(null),
          keyFile: text().nullable().default(null),
        })
        .prefault({}),
      /** SASL authentication; a secret comes from the config, an env variable or a file. */
      sasl: z
        .strictObject({
          mechanism: z
            .enum(SASL_MECHANISMS, { error: `expected one of ${SASL_MECHANISMS.join(', ')}` })
            .default('none'),
          username: text().nullable().default(null),
          password: text().nullable().default(null),
          /** A file holding the password (a mounted secret); read at start. */
          passwordFile: text().nullable().default(null),
          /** oauthbearer: a file holding the current access token, read again at each authentication. */
          tokenFile: text().nullable().default(null),
        })
        .prefault({}),
      /**
       * A broker that cannot be reached, or refuses the TLS handshake or the credentials, fails
       * start-up within these: a wrong secret is never retried (it cannot get better).
       */
      connectionTimeout: duration().default(10_000),
      authenticationTimeout: duration().default(10_000),
    }),
    registry: z.strictObject({
      url: z.url({ error: 'expected an http(s) URL' }),
      /** How long start-up waits for the registry before giving up. */
      startupTimeout: duration().default(120_000),
      /**
       * How long one registry request may take. A registry that accepts connections but never
       * answers (a stalled JVM) would otherwise hold a batch for good; past this the batch is
       * retried like any registry outage, and nothing is dead-lettered.
       */
      requestTimeout: duration().default(5_000),
      /**
       * How long an id the registry does not know, or whose schema fairflag cannot use, is
       * remembered: a flood of such ids costs one lookup per id within this time.
       */
      rejectedIdTtl: duration().default(60_000),
      /** How many such ids are remembered at most (least recently used are forgotten first). */
      rejectedIds: positiveInt().default(10_000),
      /**
       * The compatibility level every subject fairflag uses must have (docs/schemas.md): set on
       * the subjects it registers, checked on the others. Per topic key in subjectCompatibility.
       */
      compatibility: compatibilityLevel.default('FULL_TRANSITIVE'),
      subjectCompatibility: z
        .strictObject(
          Object.fromEntries(TOPIC_KEYS_WITH_SCHEMAS.map((k) => [k, compatibilityLevel.optional()])),
        )
        .default({}),
      /**
       * Also register the input subjects (activity families, review outcomes) instead of only
       * checking them: for a local stack, the demo and tests, where nobody else produces.
       */
      registerInputSubjects: flag().default(false),
      /** Basic auth (username with password or passwordFile), or a bearer token (token or tokenFile). */
      username: text().nullable().default(null),
      password: text().nullable().default(null),
      passwordFile: text().nullable().default(null),
      token: text().nullable().default(null),
      /** Read again at each request, so a rotated token is used without a restart. */
      tokenFile: text().nullable().default(null),
      /** A PEM file of the CA that signed an https registry's certificate (else Node's own CA list). */
      caFile: text().nullable().default(null),
    }),
    redis: z.strictObject({
      url: text(),
      /** Seed nodes "host:port"; when set, fairflag talks to a Redis Cluster. */
      clusterNodes: z.array(text()).default([]),
      keyPrefix: text().default('ff'),
    }),
    maxmind: z.strictObject({
      city: text(),
      asn: text(),
      anonymousIp: text(),
      /** Optional: marks mobile carriers (carrier-grade NAT), where strangers share an IP. */
      connectionType: text().nullable().default(null),
      /** MaxMind's test databases (fake data) are refused by `run` unless this is true. */
      allowTestDatabases: flag().default(false),
    }),
    topics: z.strictObject({
      login: text(),
      ip: text(),
      paymentMethod: text(),
      contract: text(),
      account: text(),
      reviewOutcomes: text(),
      flags: text(),
      deadLetter: text(),
      /** The would-be flags of a shadow candidate (shadow.candidateFile): never the flag topic. */
      shadowFlags: text().default('risk.flags-shadow'),
      /**
       * Internal: the other side of each contract event, keyed by that account, for the instance
       * that owns it (see docs/feature-state.md). Created with the input topics' partition count.
       */
      counterparts: text().default('fairflag.contract-counterparts'),
      partitions: positiveInt().default(3),
      replicationFactor: positiveInt().default(1),
      /** Created topics accept messages up to this size, so an oversized input still fits the DLQ. */
      maxMessageBytes: positiveInt().default(4 * 1024 * 1024),
    }),
    http: z.strictObject({
      port: nonNegativeInt().default(9464),
      /** The address /livez, /readyz and /metrics listen on: all IPv4 interfaces by default. */
      host: text().default('0.0.0.0'),
    }),
    validation: z.strictObject({
      maxPayloadBytes: positiveInt().default(64 * 1024),
      maxFutureSkew: duration().default(300_000),
      /** Events older than this are implausible (a clock at 0, a unit error). */
      minEventTime: z.iso.datetime({ error: 'expected an ISO-8601 UTC time like 2000-01-01T00:00:00Z' }),
      maxIdLength: positiveInt().default(128),
      /**
       * Checked first, before anything is decoded: a message over these is dead-lettered as
       * oversized at once. Keys are account ids (at most maxIdLength characters).
       */
      maxKeyBytes: positiveInt().default(1024),
      /** Headers of one message: how many, and their keys and values together. */
      maxHeaders: positiveInt().default(64),
      maxHeaderBytes: positiveInt().default(16 * 1024),
    }),
    deadLetters: z
      .strictObject({
        /**
         * A dead letter copies the original key, value and headers whole up to this many bytes
         * together; a larger original is truncated (source position, sizes, SHA-256 digests and
         * the first 64 KiB kept). Producing megabytes holds the event loop: kafkajs encodes and
         * checksums a record batch in JavaScript, several milliseconds per MiB.
         */
        maxOriginalBytes: positiveInt().default(1024 * 1024),
      })
      .prefault({}),
    /**
     * A candidate policy evaluated beside the live one on the same events: its file is merged over
     * the live config (production plus the analyst's edit), its would-be flags go to
     * topics.shadowFlags, and its state to a namespace of its own. Set, replaced or removed by a
     * config reload; null runs no shadow.
     */
    shadow: z.strictObject({ candidateFile: text().nullable().default(null) }).prefault({}),
    /** replay, diff and check-config: what they read. */
    tools: z
      .strictObject({
        /** An input file (replay, diff) larger than this is refused before it is read. */
        maxInputBytes: positiveInt().default(1024 * 1024 * 1024),
        /** A line longer than this is reported as a bad record, without parsing it. */
        maxLineBytes: positiveInt().default(1024 * 1024),
      })
      .prefault({}),
    processing: z
      .strictObject({
        /**
         * Attempts of a batch step (processing, producing) that fails with an unexpected error
         * (not an outage of Redis, Kafka or the registry) before the batch is split to find the
         * message and dead-letter it. Outages are retried for as long as they last.
         */
        attempts: positiveInt().default(3),
        /**
         * How long a stop (SIGTERM, SIGINT) may take to finish the in-flight batches, commit and
         * disconnect; past it the process exits non-zero naming what was still in flight.
         */
        shutdownTimeout: duration().default(30_000),
        /**
         * A batch still in flight after this long (stuck on something no retry frees) makes the
         * process unrecoverable: /livez fails and `run` exits non-zero, so it is restarted.
         */
        stuckBatchTimeout: duration().default(300_000),
      })
      .prefault({}),
    state: z
      .strictObject({
        /**
         * Accounts kept in memory per instance beyond those a batch is using or has not yet
         * written; the least recently used clean ones are evicted (Redis has them). About a few
         * KiB each: size it to the instance's memory.
         */
        maxAccounts: positiveInt().default(100_000),
      })
      .prefault({}),
    features: z.strictObject({
      allowedLateness: duration(),
      /** Values (countries, devices, IPs...) are remembered this long. */
      history: duration(),
      /** Observations from different events corroborate each other within this window. */
      correlationWindow: duration(),
      deviceWindow: duration().default(30 * 86_400_000),
      caps: z.strictObject({
        eventsPerKind: positiveInt(),
        values: positiveInt(),
        sessions: positiveInt(),
        accountsPerEntity: positiveInt(),
      }),
    }),
    signals: signalsSchema,
    mitigations: z.strictObject({
      tenure: mitigation({ minAge: duration() }),
      verified_identity: mitigation({}),
      contract_history: mitigation({ minCompletedContracts: positiveInt(), minPaidHours: positiveNumber() }),
      long_running_contract: mitigation({ minAge: duration(), maxPaymentGap: duration() }),
      // not a factor: a reviewer's decision suppresses the same pattern for the cooldown
      cleared_review: z.strictObject({ enabled: flag().default(true), cooldown: duration() }),
    }),
    review: z.strictObject({
      action: z.literal(REVIEW_ACTION, {
        error: `expected "${REVIEW_ACTION}", the only action fairflag can take`,
      }),
      threshold: positiveNumber(),
      minFamilies: positiveInt().default(2),
      /** Mitigations never take a strong signal's contribution below this share of it. */
      strongSignalFloor: factor(),
      severities: z
        .array(z.strictObject({ name: text(), minScore: positiveNumber() }))
        .min(1, { error: 'expected at least one severity band' }),
    }),
    queues: z.record(
      z.string().regex(/^[a-z][a-z0-9_]*$/, { error: 'expected a queue name in snake_case' }),
      z.strictObject({ notice }),
    ),
  })
  .superRefine((cfg, ctx) => {
    const signals = cfg.signals as Record<
      string,
      Record<string, { queue: string; sufficientAlone: boolean }>
    >;
    for (const s of SIGNALS) {
      const [family, name] = [s.family, s.id.slice(s.family.length + 1)];
      const p = signals[family]?.[name];
      if (!p) continue;
      if (!(p.queue in cfg.queues)) {
        ctx.addIssue({
          code: 'custom',
          path: ['signals', family, name, 'queue'],
          message: `expected one of the configured queues (${Object.keys(cfg.queues).join(', ')})`,
          input: p.queue,
        });
      }
      if (s.weak && p.sufficientAlone) {
        ctx.addIssue({
          code: 'custom',
          path: ['signals', family, name, 'sufficientAlone'],
          message: `expected false: ${s.id} is a weak signal and never raises a flag on its own`,
          input: true,
        });
      }
    }
    for (const [id, m] of Object.entries(cfg.mitigations)) {
      if (!('appliesTo' in m)) continue;
      m.appliesTo.forEach((queue, i) => {
        if (!(queue in cfg.queues))
          ctx.addIssue({
            code: 'custom',
            path: ['mitigations', id, 'appliesTo', i],
            message: `expected one of the configured queues (${Object.keys(cfg.queues).join(', ')})`,
            input: queue,
          });
      });
    }
    connectionIssues(cfg).forEach((issue) => ctx.addIssue({ code: 'custom', ...issue }));
    const bands = cfg.review.severities;
    bands.forEach((b, i) => {
      if (i > 0 && b.minScore <= bands[i - 1]!.minScore) {
        ctx.addIssue({
          code: 'custom',
          path: ['review', 'severities', i, 'minScore'],
          message: 'expected severity bands in rising order of minScore',
          input: b.minScore,
        });
      }
    });
    if (bands[0] && bands[0].minScore > cfg.review.threshold) {
      ctx.addIssue({
        code: 'custom',
        path: ['review', 'severities', 0, 'minScore'],
        message: `expected at most the review threshold (${cfg.review.threshold}), so every flag has a severity`,
        input: bands[0].minScore,
      });
    }
  });

/** Settings that only make sense together: credentials for the chosen mechanism, one secret source. */
function connectionIssues(cfg: {
  kafka: { sasl: Record<string, string | null>; ssl: Record<string, unknown> };
  registry: Record<string, unknown>;
}): { path: (string | number)[]; message: string; input: unknown }[] {
  const out: { path: (string | number)[]; message: string; input: unknown }[] = [];
  const sasl = cfg.kafka.sasl;
  const at = (...path: string[]) => ['kafka', 'sasl', ...path];
  if (sasl['password'] !== null && sasl['passwordFile'] !== null)
    out.push({
      path: at('passwordFile'),
      message: 'expected password or passwordFile, not both',
      input: '(both set)',
    });
  if (sasl['mechanism'] === 'oauthbearer') {
    if (sasl['tokenFile'] === null)
      out.push({ path: at('tokenFile'), message: 'expected a token file for oauthbearer', input: null });
  } else if (sasl['mechanism'] !== 'none') {
    if (sasl['username'] === null)
      out.push({
        path: at('username'),
        message: `expected a username for ${sasl['mechanism']}`,
        input: null,
      });
    if (sasl['password'] === null && sasl['passwordFile'] === null)
      out.push({
        path: at('password'),
        message: `expected a password or passwordFile for ${sasl['mechanism']}`,
        input: null,
      });
  }
  // a setting the chosen mechanism does not use would be silently ignored: say so instead
  const unused =
    sasl['mechanism'] === 'none'
      ? ['username', 'password', 'passwordFile', 'tokenFile']
      : sasl['mechanism'] === 'oauthbearer'
        ? ['username', 'password', 'passwordFile']
        : ['tokenFile'];
  for (const k of unused)
    if (sasl[k] !== null && sasl[k] !== undefined)
      out.push({
        path: at(k),
        message: `set, but not used by mechanism ${sasl['mechanism']}`,
        input: '(set)',
      });
  const ssl = cfg.kafka.ssl;
  if ((ssl['certFile'] === null) !== (ssl['keyFile'] === null))
    out.push({
      path: ['kafka', 'ssl', ssl['certFile'] === null ? 'certFile' : 'keyFile'],
      message: 'expected certFile and keyFile together (a client certificate and its key)',
      input: null,
    });
  if (!ssl['enabled'])
    for (const k of ['caFile', 'certFile', 'keyFile'])
      if (ssl[k] !== null)
        out.push({
          path: ['kafka', 'ssl', k],
          message: 'set, but kafka.ssl.enabled is false',
          input: ssl[k],
        });
  const r = cfg.registry;
  const set = (k: string) => r[k] !== null && r[k] !== undefined;
  if (set('password') && set('passwordFile'))
    out.push({
      path: ['registry', 'passwordFile'],
      message: 'expected password or passwordFile, not both',
      input: '(both set)',
    });
  if (set('token') && set('tokenFile'))
    out.push({
      path: ['registry', 'tokenFile'],
      message: 'expected token or tokenFile, not both',
      input: '(both set)',
    });
  if (set('username') && (set('token') || set('tokenFile')))
    out.push({
      path: ['registry', 'username'],
      message: 'expected basic auth (username) or a bearer token, not both',
      input: '(both set)',
    });
  if (set('username') && !set('password') && !set('passwordFile'))
    out.push({
      path: ['registry', 'password'],
      message: 'expected a password or passwordFile with registry.username',
      input: null,
    });
  if (set('caFile') && !/^https:/i.test(String(r['url'])))
    out.push({
      path: ['registry', 'caFile'],
      message: 'set, but registry.url is not https',
      input: r['caFile'],
    });
  if (!set('username') && (set('password') || set('passwordFile')))
    out.push({
      path: ['registry', 'username'],
      message: 'expected a username with a registry password',
      input: null,
    });
  return out;
}

export type Config = z.output<typeof configSchema>;

/** The topics a config names, by key (config.topics without its partition and size settings). */
export function topicNames(topics: Config['topics']): Record<string, string> {
  return Object.fromEntries(
    Object.entries(topics).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
}
export type ConfigInput = z.input<typeof configSchema>;
