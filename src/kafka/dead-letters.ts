// Dead letters that always fit. A dead letter keeps the original key, value and headers and the
// source topic/partition/offset; when that would not fit the dead-letter topic (a compressed
// input decompresses to more than the topic takes, or the topic was created smaller), or the
// headers are over the configured limits, it keeps the source position, the sizes, SHA-256
// digests and the first part of the bytes, and says it was truncated. Its Kafka key is bounded
// (a long key is cut and digested) and its partition is chosen from the source partition, so
// nothing hashes a key of megabytes (kafkajs's murmur2 took minutes on one).
import { webcrypto } from 'node:crypto';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import type { DeadLetterReason } from '../ingest/ingest.js';

export interface DeadLetter {
  reason: DeadLetterReason;
  detail: string;
  message: KafkaMessage;
  topic: string;
  partition: number;
}

/** What a truncated dead letter says of the original (schemas/dead-letter.avsc, `truncated`). */
export interface Truncation {
  keyBytes: number;
  valueBytes: number;
  headerCount: number;
  headerBytes: number;
  keySha256: string | null;
  valueSha256: string | null;
}

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
  truncated: Truncation | null;
}

/** A dead letter ready to encode and produce: its record and its Kafka key, headers and partition. */
export interface ShapedDeadLetter {
  record: DeadLetterRecord;
  key: Buffer | null;
  headers: Record<string, string>;
  partition: number;
}

export interface DeadLetterLimits {
  /** The most a dead letter's record may take once encoded (the topic's limit less framing). */
  recordBudget: number;
  /**
   * The most of an original (key, value and headers together) a dead letter copies whole;
   * beyond it, it is truncated. Producing megabytes holds the event loop (kafkajs encodes and
   * checksums a record batch in JavaScript, several milliseconds per MiB).
   */
  maxOriginalBytes: number;
  /** Partitions of the dead-letter topic: a source partition's dead letters all go to one. */
  partitions: number;
  /** validation.maxHeaders / maxHeaderBytes: a dead letter never copies more headers than these. */
  maxHeaders: number;
  maxHeaderBytes: number;
}

/** Header on every dead letter: where the original is ("topic/partition@offset"). */
export const SOURCE_HEADER = 'fairflag-source';
export const REASON_HEADER = 'fairflag-reason';
export const TRUNCATED_HEADER = 'fairflag-truncated';

/** A dead letter's Kafka key: the original up to this many bytes; longer ones are cut and digested. */
export const DEAD_LETTER_KEY_MAX = 256;
const KEY_KEEP = 128;
/** The longest detail a dead letter carries. */
const MAX_DETAIL = 2000;
/** Of a truncated original: at most this much of the key and of the value, less on a small topic. */
const TRUNCATED_KEY_KEEP = 1024;
const TRUNCATED_VALUE_KEEP = 64 * 1024;

/** SHA-256 in hex, computed off the event loop (WebCrypto runs on the thread pool). */
export async function sha256(buf: Buffer): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', buf)).toString('hex');
}

/** The dead letter's Kafka key: the original key if short, else its first bytes and a digest. */
export async function deadLetterKey(key: Buffer | null): Promise<Buffer | null> {
  if (!key || key.length <= DEAD_LETTER_KEY_MAX) return key;
  return Buffer.concat([key.subarray(0, KEY_KEEP), Buffer.from(`...#sha256=${await sha256(key)}`)]);
}

/** The headers of a Kafka message as the dead-letter schema lists them (repeated keys kept). */
export function headerList(headers: IHeaders | undefined): { key: string; value: Buffer | null }[] {
  const out: { key: string; value: Buffer | null }[] = [];
  for (const [key, v] of Object.entries(headers ?? {}))
    for (const one of Array.isArray(v) ? v : [v])
      out.push({
        key,
        value: one === undefined ? null : Buffer.isBuffer(one) ? one : Buffer.from(String(one)),
      });
  return out;
}

/** Header count and bytes (keys and values) of a Kafka message, without copying anything. */
export function headerTotals(headers: IHeaders | undefined): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const [key, v] of Object.entries(headers ?? {})) {
    for (const one of Array.isArray(v) ? v : [v]) {
      count++;
      bytes += key.length + (one === undefined ? 0 : Buffer.isBuffer(one) ? one.length : String(one).length);
    }
  }
  return { count, bytes };
}

const utf8 = (s: string | null) => (s === null ? 0 : Buffer.byteLength(s));

/** An upper bound of a dead-letter record's Avro encoding (varints and union indexes generously). */
export function recordSize(r: DeadLetterRecord): number {
  let n = 128 + utf8(r.reason) + utf8(r.detail) + utf8(r.sourceTopic) + utf8(r.sourceOffset);
  n += utf8(r.sourceTimestamp) + utf8(r.processorVersion) + (r.key?.length ?? 0) + (r.value?.length ?? 0);
  for (const h of r.headers) n += 12 + utf8(h.key) + (h.value?.length ?? 0);
  if (r.truncated) n += 48 + utf8(r.truncated.keySha256) + utf8(r.truncated.valueSha256);
  return n;
}

/** A bounded copy of text for a dead letter's detail. */
function boundedDetail(detail: string): string {
  return detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL)}... (${detail.length} chars)` : detail;
}

/**
 * Shapes a dead letter: the full original when it fits `limits.recordBudget`, is at most
 * `limits.maxOriginalBytes` and its headers are within the limits; else a truncated one (see the file's comment). Work is bounded by the
 * message's size: nothing but copies of what is kept and digests off the event loop.
 */
export async function shapeDeadLetter(
  d: DeadLetter,
  limits: DeadLetterLimits,
  processorVersion: string,
  now = Date.now(),
): Promise<ShapedDeadLetter> {
  const m = d.message;
  const key = m.key ?? null;
  const value = m.value ?? null;
  const totals = headerTotals(m.headers);
  const headersOver = totals.count > limits.maxHeaders || totals.bytes > limits.maxHeaderBytes;
  const record: DeadLetterRecord = {
    reason: d.reason,
    detail: boundedDetail(d.detail),
    sourceTopic: d.topic,
    sourcePartition: d.partition,
    sourceOffset: m.offset,
    sourceTimestamp: m.timestamp ?? null,
    key,
    value,
    headers: headersOver ? [] : headerList(m.headers),
    failedAt: now,
    processorVersion,
    truncated: null,
  };
  const original = (key?.length ?? 0) + (value?.length ?? 0) + totals.bytes;
  if (headersOver || original > limits.maxOriginalBytes || recordSize(record) > limits.recordBudget) {
    // keep what fits a quarter of the budget each of key and value, and headers up to the limits
    const keep = (b: Buffer | null, most: number) =>
      b && b.length > most ? Buffer.from(b.subarray(0, Math.max(0, most))) : b;
    const room = Math.floor(limits.recordBudget / 4);
    record.key = keep(key, Math.min(TRUNCATED_KEY_KEEP, room));
    record.value = keep(value, Math.min(TRUNCATED_VALUE_KEEP, room));
    record.headers = [];
    let bytes = 0;
    const headerRoom = Math.min(limits.maxHeaderBytes, room);
    for (const h of headerList(m.headers)) {
      const size = h.key.length + (h.value?.length ?? 0);
      if (record.headers.length >= limits.maxHeaders || bytes + size > headerRoom) break;
      record.headers.push(h);
      bytes += size;
    }
    record.truncated = {
      keyBytes: key?.length ?? 0,
      valueBytes: value?.length ?? 0,
      headerCount: totals.count,
      headerBytes: totals.bytes,
      keySha256: key ? await sha256(key) : null,
      valueSha256: value ? await sha256(value) : null,
    };
  }
  const headers: Record<string, string> = {
    [REASON_HEADER]: d.reason,
    [SOURCE_HEADER]: `${d.topic}/${d.partition}@${m.offset}`,
  };
  if (record.truncated) headers[TRUNCATED_HEADER] = 'true';
  return {
    record,
    key: await deadLetterKey(key),
    headers,
    partition: d.partition % Math.max(1, limits.partitions),
  };
}

/** The same dead letter with nothing of the original but its source position, sizes and digests. */
export async function minimalDeadLetter(
  shaped: ShapedDeadLetter,
  original: DeadLetter,
  why: string,
): Promise<ShapedDeadLetter> {
  const m = original.message;
  const key = m.key ?? null;
  const value = m.value ?? null;
  const totals = headerTotals(m.headers);
  return {
    ...shaped,
    key: await deadLetterKey(key),
    headers: { ...shaped.headers, [TRUNCATED_HEADER]: 'true' },
    record: {
      ...shaped.record,
      detail: boundedDetail(`${shaped.record.detail} (${why})`),
      key: null,
      value: null,
      headers: [],
      truncated: {
        keyBytes: key?.length ?? 0,
        valueBytes: value?.length ?? 0,
        headerCount: totals.count,
        headerBytes: totals.bytes,
        keySha256: key ? await sha256(key) : null,
        valueSha256: value ? await sha256(value) : null,
      },
    },
  };
}

/** Bytes a produced message takes in a record batch, generously (framing, varints, headers). */
export function messageSize(m: {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: IHeaders;
}): number {
  const len = (x: Buffer | string | null | undefined) =>
    x === null || x === undefined ? 0 : Buffer.isBuffer(x) ? x.length : Buffer.byteLength(x);
  let n = 72 + len(m.key) + len(m.value);
  for (const [k, v] of Object.entries(m.headers ?? {}))
    for (const one of Array.isArray(v) ? v : [v]) n += 12 + Buffer.byteLength(k) + len(one);
  return n;
}

/**
 * Splits messages (in order) into produce requests whose total fits `budget(topic)` of every
 * topic in it: a record batch per partition never exceeds its topic's limit. A message alone is
 * always its own request (it fits its topic by construction).
 */
export function chunkBySize<T extends { topic: string; size: number }>(
  items: readonly T[],
  budget: (topic: string) => number,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let total = 0;
  let room = Infinity;
  for (const it of items) {
    const r = Math.min(room, budget(it.topic));
    if (cur.length && total + it.size > r) {
      out.push(cur);
      cur = [];
      total = 0;
      room = budget(it.topic);
    } else room = r;
    cur.push(it);
    total += it.size;
  }
  if (cur.length) out.push(cur);
  return out;
}
