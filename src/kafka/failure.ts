// What a failure means, decided in one place. Either a service fairflag needs is out (Redis, Kafka
// or the registry unreachable, timing out, overloaded): the work is retried with backoff and
// jitter, and nothing is dead-lettered; or the failure belongs to one message, which is
// dead-lettered with a specific reason; or it is unexpected (a bug, or an input nothing checked
// for): dead-lettered as processing_error when it is one message's, and never retried forever at
// batch level (see Processor: bounded attempts, then the batch is split to find the message).
import { CounterpartFormatError } from '../engine/counterparts.js';
import { StateStoreError } from '../features/state-backend.js';
import type { DeadLetterReason } from '../ingest/ingest.js';
import { InvalidEventError } from '../ingest/validate.js';
import { DecodeError, RegistryUnavailableError } from './codec.js';

export type Service = 'redis' | 'kafka' | 'registry' | 'network';

export type Judgement =
  /** A service is out: retry with backoff while the batch is ours; blame no message. */
  | { kind: 'outage'; service: Service; cause: string; detail: string }
  /** The message cannot be used: dead-letter it with this reason. */
  | { kind: 'message'; reason: DeadLetterReason; detail: string }
  /** Nothing known: one message's when it happens while handling one message; else bounded retries. */
  | { kind: 'unexpected'; cause: string; detail: string };

/** Longest detail a dead letter or a log line carries of an error's message. */
const MAX_DETAIL = 1000;

/** An error as a dead letter's detail: its class and message, bounded. */
export function describeError(err: unknown): string {
  const e = err as Error | undefined;
  const text = `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}... (${text.length} chars)` : text;
}

/** Redis replies that say "not now" (loading, busy, failing over, out of memory), not "never". */
const TRANSIENT_REDIS_REPLIES =
  /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS|MISCONF|MOVED|ASK|NOAUTH|NOPERM|WRONGPASS)\b/;

/** Kafka protocol errors about what was sent (not about the cluster): the same request fails again. */
const KAFKA_CONTENT_ERRORS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

/** Socket-level errors: the network or the service on the other side. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

interface KafkaLike extends Error {
  retriable?: boolean;
  type?: string;
  cause?: unknown;
}

function outage(service: Service, err: unknown): Judgement {
  return { kind: 'outage', service, cause: (err as Error)?.name || 'Error', detail: describeError(err) };
}

function unexpected(err: unknown): Judgement {
  return { kind: 'unexpected', cause: (err as Error)?.name || 'Error', detail: describeError(err) };
}

/** The chain of causes of an error, itself first (bounded: a cycle must not loop). */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e: unknown = err; e && out.length < 8 && !out.includes(e); e = (e as { cause?: unknown }).cause)
    out.push(e);
  return out;
}

function judgeKafka(err: KafkaLike): Judgement {
  const chain = causes(err) as KafkaLike[];
  // the client gave up retrying something retriable: the cluster, not the request
  if (chain.some((e) => e.name === 'KafkaJSNumberOfRetriesExceeded')) return outage('kafka', err);
  const content = chain.find((e) => e.type && KAFKA_CONTENT_ERRORS.has(e.type));
  if (content) return unexpected(content);
  const root = chain[chain.length - 1]!;
  // a plain error under the client's wrapper (a TypeError encoding a message...): not the cluster
  if (!root.name?.startsWith('KafkaJS')) return judge(root);
  return outage('kafka', err);
}

/**
 * What an error means. Known outages of Redis, Kafka and the registry, and socket errors, are
 * outages; the input errors fairflag raises itself belong to the message; anything else is
 * unexpected.
 */
export function judge(err: unknown): Judgement {
  if (err instanceof RegistryUnavailableError) return outage('registry', err);
  if (err instanceof DecodeError) return { kind: 'message', reason: err.reason, detail: err.message };
  if (err instanceof InvalidEventError)
    return { kind: 'message', reason: 'invalid_field', detail: err.message };
  if (err instanceof CounterpartFormatError)
    return { kind: 'message', reason: 'undecodable', detail: err.message };
  if (err instanceof StateStoreError) {
    const reply = causes(err).find((e) => (e as Error).name === 'ReplyError') as Error | undefined;
    // a reply Redis gives every time (WRONGTYPE, ERR ...) is not an outage; anything short of a
    // reply (connection closed, not writeable, timeouts, retries exhausted) is
    if (reply && !TRANSIENT_REDIS_REPLIES.test(reply.message)) return unexpected(err);
    return outage('redis', err);
  }
  const e = err as KafkaLike & { code?: string };
  if (e?.name?.startsWith('KafkaJS')) return judgeKafka(e);
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return outage('network', err);
  for (const c of causes(err))
    if (NETWORK_CODES.has((c as { code?: string }).code ?? '')) return outage('network', err);
  return unexpected(err);
}

/** Whether to retry with backoff for as long as the batch is ours. */
export const isOutage = (err: unknown): boolean => judge(err).kind === 'outage';

/**
 * An error raised while handling one message: an outage is rethrown (its batch is retried);
 * anything else becomes that message's dead-letter reason and detail.
 */
export function messageFailure(err: unknown): { reason: DeadLetterReason; detail: string } {
  const j = judge(err);
  if (j.kind === 'outage') throw err;
  if (j.kind === 'message') return { reason: j.reason, detail: j.detail };
  return { reason: 'processing_error', detail: j.detail };
}
