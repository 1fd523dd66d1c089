// Replay recorded events through exactly production's processors, features and scoring, in an
// isolated Redis namespace created and removed by the run. Used by `replay` and `diff`.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import avro from 'avsc';
import type { Kafka } from 'kafkajs';
import { FAMILIES, type Family, type ReviewOutcome } from '../domain/events.js';
import type { ReviewFlag } from '../domain/flags.js';
import { decidingSignals } from '../domain/scoring.js';
import { GeoIp } from '../enrich/geoip.js';
import { Engine, type EngineInput } from '../engine/engine.js';
import { compilePolicy } from '../engine/policy.js';
import { OwnedAccounts } from '../features/owned-accounts.js';
import { RedisStateBackend } from '../features/state-backend.js';
import { ingest, type DeadLetterReason } from '../ingest/ingest.js';
import { validateOutcome } from '../ingest/validate.js';
import { Codec, DecodeError, readSchema, topicOf } from '../kafka/codec.js';
import { judge, messageFailure } from '../kafka/failure.js';
import { connectRedis } from '../kafka/processor.js';
import { offsetsAt, readRange } from '../kafka/topic-tools.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import type { Logger } from '../runtime/logger.js';
import { labelFlags, reportLabels, type LabelReport, type LabelledFlag } from './review-labels.js';

/**
 * The NDJSON family of a reviewer's decision (the review-outcome topic's records): replayed as the
 * live pipeline applies them, and the labels of a backtest.
 */
export const REVIEW_OUTCOME = 'review_outcome';
export type ReplayFamily = Family | typeof REVIEW_OUTCOME;
const REPLAY_FAMILIES: readonly ReplayFamily[] = [...FAMILIES, REVIEW_OUTCOME];

/** One input record: where it came from, and either the decoded record or why it is unusable. */
export interface ReplayItem {
  where: string;
  family?: ReplayFamily;
  record?: unknown;
  error?: { reason: DeadLetterReason | 'not_json' | 'bad_shape' | 'registry_unavailable'; detail: string };
}

export interface Rejected {
  where: string;
  reason: string;
  detail: string;
}

export interface ReplayResult {
  configVersion: string;
  namespace: string;
  namespaceRemoved: boolean;
  eventsRead: number;
  accepted: number;
  late: number;
  rejected: Rejected[];
  /** Every flag message, in emission order. */
  flags: ReviewFlag[];
  /** The last revision of each flag, by flag id. */
  finalFlags: Map<string, ReviewFlag>;
  signalFires: Map<string, number>;
  /** How often each signal was one the review depended on (see decidingSignals). */
  deciding: Map<string, number>;
  /**
   * The last score of every account and queue the engine scored (something fired for it), by
   * `account|queue`, whether it went to review or not: the score distribution of a report.
   */
  scores: Map<string, AccountScore>;
  /** Signals that fired per account, for diff's "what made the difference". */
  firedByAccount: Map<string, Set<string>>;
  /** The review outcomes replayed, in input order. */
  outcomes: ReviewOutcome[];
  /** Each final flag with the reviewers' decision about it (all NOT_REVIEWED without outcomes). */
  labelled: LabelledFlag[];
  /** Precision per queue and signal; only when the input held review outcomes. */
  labels?: LabelReport;
}

export interface AccountScore {
  accountId: string;
  queue: string;
  score: number;
  threshold: number;
  /** Set when the account went to review in that queue at its last scoring. */
  severity?: string;
}

export interface ReplayOptions {
  loaded: LoadedConfig;
  items: ReplayItem[] | AsyncIterable<ReplayItem>;
  /** Keep the namespace after the run (to inspect it); removed by default. */
  keep?: boolean;
  batchSize?: number;
  onProgress?: (done: number) => void;
  /** Where the run says what it does (its namespace, its totals). */
  log?: Logger;
}

const countInc = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const namespace = `${opts.loaded.config.redis.keyPrefix}-replay-${runId}`;
  const loaded: LoadedConfig = {
    ...opts.loaded,
    config: { ...opts.loaded.config, redis: { ...opts.loaded.config.redis, keyPrefix: namespace } },
  };
  const policy = compilePolicy(loaded);
  const geo = await GeoIp.open(loaded.config.maxmind);
  const redis = connectRedis(loaded.config.redis);
  await redis.connect();
  const backend = new RedisStateBackend(redis, namespace);
  opts.log?.info({ namespace, configVersion: policy.version }, 'replay started');
  const accounts = new OwnedAccounts({
    backend,
    layout: () => policy.layout,
    ttlMs: () => policy.accountTtlMs,
    maxAccounts: loaded.config.state.maxAccounts,
  });
  // the other side of a contract is applied at once, as the live pipeline's counterpart topic would
  const engine = new Engine({ accounts, backend, policy: () => policy, counterparts: 'inline' });
  const result: ReplayResult = {
    configVersion: policy.version,
    namespace,
    namespaceRemoved: false,
    eventsRead: 0,
    accepted: 0,
    late: 0,
    rejected: [],
    flags: [],
    finalFlags: new Map(),
    signalFires: new Map(),
    deciding: new Map(),
    scores: new Map(),
    firedByAccount: new Map(),
    outcomes: [],
    labelled: [],
  };
  const batchSize = opts.batchSize ?? 500;
  const types = familyTypes();
  let batch: { input: EngineInput; where: string }[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const r = await engine.run(
      batch.map(({ input }) => input),
      0,
    );
    r.outcomes.forEach((o, i) => {
      if (o.status === 'conflict' || o.status === 'error') {
        result.accepted--;
        result.rejected.push({
          where: batch[i]!.where,
          reason: o.status === 'conflict' ? 'conflicting_duplicate' : 'processing_error',
          detail: o.detail ?? o.status,
        });
      }
    });
    for (const o of r.outcomes) {
      if (o.lateFor.length) result.late++;
      for (const e of o.evaluations) {
        if (e.evaluation.status !== 'fired') continue;
        countInc(result.signalFires, e.signalId);
        const fired = result.firedByAccount.get(e.accountId) ?? new Set<string>();
        result.firedByAccount.set(e.accountId, fired.add(e.signalId));
      }
    }
    for (const { accountId, decision: d } of r.scored)
      result.scores.set(`${accountId}|${d.queue}`, {
        accountId,
        queue: d.queue,
        score: d.score,
        threshold: d.threshold,
        ...(d.severity !== undefined && { severity: d.severity }),
      });
    for (const { flag, decision } of r.emissions) {
      result.flags.push(flag);
      result.finalFlags.set(flag.flagId, flag);
      for (const id of decidingSignals(decision, policy.config.review)) countInc(result.deciding, id);
    }
    batch = [];
  };
  try {
    for await (const item of opts.items) {
      result.eventsRead++;
      if (item.error || !item.family) {
        const e = item.error ?? { reason: 'bad_shape', detail: 'no family' };
        result.rejected.push({ where: item.where, ...e });
      } else if (item.family === REVIEW_OUTCOME) {
        try {
          const outcome = validateOutcome(
            types.get(REVIEW_OUTCOME)!.clone(item.record),
            loaded.config.validation,
          );
          result.outcomes.push(outcome);
          batch.push({ input: { kind: 'outcome', outcome }, where: item.where });
          result.accepted++;
        } catch (err) {
          result.rejected.push({ where: item.where, ...messageFailure(err) });
        }
      } else {
        // in the schema's field order, as a decoded Kafka message has it: its JSON is the digest
        // that tells a replayed event from a conflicting one, here and in the live pipeline
        let record: unknown;
        try {
          record = types.get(item.family)!.clone(item.record);
        } catch (err) {
          result.rejected.push({
            where: item.where,
            reason: 'invalid_field',
            detail: `does not fit the ${item.family} schema: ${(err as Error).message}`,
          });
          opts.onProgress?.(result.eventsRead);
          continue;
        }
        // whatever a record makes the checks throw, it is reported with its position, never
        // stops the run (failure.ts: its reason, or processing_error with the error's class)
        let r: ReturnType<typeof ingest>;
        try {
          r = ingest(item.family, record, loaded.config.validation, geo);
        } catch (err) {
          r = { ok: false, ...messageFailure(err) };
        }
        if (r.ok) {
          batch.push({ input: { kind: 'event', event: r.event }, where: item.where });
          result.accepted++;
        } else result.rejected.push({ where: item.where, reason: r.reason, detail: r.detail });
      }
      if (batch.length >= batchSize) await flush();
      opts.onProgress?.(result.eventsRead);
    }
    await flush();
    result.labelled = labelFlags(result.finalFlags.values(), result.outcomes);
    if (result.outcomes.length) result.labels = reportLabels(result.labelled, result.outcomes);
  } finally {
    if (!opts.keep) {
      await backend.dropNamespace();
      result.namespaceRemoved = true;
    }
    redis.disconnect();
  }
  opts.log?.info(
    {
      namespace,
      eventsRead: result.eventsRead,
      accepted: result.accepted,
      rejected: result.rejected.length,
      flagMessages: result.flags.length,
      namespaceRemoved: result.namespaceRemoved,
    },
    'replay finished',
  );
  return result;
}

/** Avro types of the five families and of review outcomes, for checking NDJSON lines against the schemas. */
function familyTypes(): Map<ReplayFamily, avro.Type> {
  const roles: Record<ReplayFamily, Parameters<typeof readSchema>[0]> = {
    login: 'login',
    ip: 'ip',
    payment: 'payment',
    contract: 'contract',
    account: 'account',
    [REVIEW_OUTCOME]: 'reviewOutcome',
  };
  return new Map(
    REPLAY_FAMILIES.map((f) => [
      f,
      avro.Type.forSchema(JSON.parse(readSchema(roles[f]).text) as avro.Schema),
    ]),
  );
}

/**
 * Reads NDJSON: one `{"family": "<login|ip|payment|contract|account|review_outcome>", "event":
 * {...}}` per line, the event in its schema's JSON form (plain values, null for absent optional
 * fields). A bad line becomes a rejected item naming its line number; it never stops the read.
 */
export async function* readNdjson(file: string, maxLineBytes = Infinity): AsyncGenerator<ReplayItem> {
  const types = familyTypes();
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    const where = `line ${n}`;
    if (line.length > maxLineBytes) {
      yield {
        where,
        error: {
          reason: 'oversized',
          detail: `${line.length} characters, more than tools.maxLineBytes (${maxLineBytes})`,
        },
      };
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      yield { where, error: { reason: 'not_json', detail: `not JSON: ${(err as Error).message}` } };
      continue;
    }
    const p = parsed as { family?: unknown; event?: unknown };
    if (
      typeof p !== 'object' ||
      p === null ||
      !REPLAY_FAMILIES.includes(p.family as ReplayFamily) ||
      typeof p.event !== 'object'
    ) {
      yield {
        where,
        error: {
          reason: 'bad_shape',
          detail: `expected {"family": one of ${REPLAY_FAMILIES.join(', ')}, "event": {...}}, got ${line.slice(0, 80)}`,
        },
      };
      continue;
    }
    const family = p.family as ReplayFamily;
    const problems: string[] = [];
    types.get(family)!.isValid(p.event, {
      errorHook: (path, value) => {
        if (problems.length < 3)
          problems.push(
            `${path.join('.') || 'event'}: does not fit the schema, got ${JSON.stringify(value)}`,
          );
      },
    });
    if (problems.length) {
      yield { where, error: { reason: 'invalid_field', detail: problems.join('; ') } };
      continue;
    }
    yield { where, family, record: p.event };
  }
}

/**
 * Reads the input topics and the review outcomes between two times (inclusive from, exclusive
 * until), decoding each message.
 */
export async function readKafkaRange(
  kafka: Kafka,
  loaded: LoadedConfig,
  since: number,
  until: number,
): Promise<ReplayItem[]> {
  const codec = await Codec.connect(loaded.config);
  const admin = kafka.admin();
  await admin.connect();
  const items: (ReplayItem & { at: number; order: string })[] = [];
  try {
    for (const family of REPLAY_FAMILIES) {
      const role = family === REVIEW_OUTCOME ? 'reviewOutcome' : family;
      const topic = topicOf(role, loaded.config.topics);
      const messages = await readRange(
        kafka,
        topic,
        await offsetsAt(admin, topic, since),
        await offsetsAt(admin, topic, until),
      );
      const limit = loaded.config.validation.maxPayloadBytes;
      for (const m of messages) {
        const where = `${topic}/${m.partition}@${m.offset}`;
        const order = `${topic}/${String(m.partition).padStart(5, '0')}/${m.offset.padStart(20, '0')}`;
        try {
          const value = m.value ?? Buffer.alloc(0);
          if (value.length > limit)
            throw new DecodeError(
              'undecodable',
              `payload of ${value.length} bytes exceeds validation.maxPayloadBytes (${limit})`,
            );
          const record = await codec.decodeAs(role, value);
          const r = record as { occurredAt?: number; decidedAt?: number };
          const t = r.occurredAt ?? r.decidedAt ?? Number(m.timestamp);
          items.push({ where, family, record, at: t, order });
        } catch (err) {
          // whatever the cause (an id the registry cannot give, even the registry down): this
          // record is reported with its position and the read goes on
          const j = judge(err);
          const error =
            j.kind === 'outage'
              ? { reason: 'registry_unavailable' as const, detail: j.detail }
              : j.kind === 'message'
                ? { reason: j.reason, detail: j.detail }
                : { reason: 'processing_error' as const, detail: j.detail };
          items.push({ where, error, at: Number(m.timestamp), order });
        }
      }
    }
  } finally {
    await admin.disconnect();
  }
  // event time order across topics, topic position within the same millisecond: deterministic
  return items.sort((a, b) => a.at - b.at || a.order.localeCompare(b.order));
}
