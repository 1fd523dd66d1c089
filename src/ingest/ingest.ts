// From a decoded record to an enriched event, or a reason it cannot be used. Shared by the Kafka
// runner (after Avro decoding) and replay (after reading NDJSON), so both judge input alike.
import type { Config } from '../../config/schema.js';
import type { EnrichedEvent, Family, Geo } from '../domain/events.js';
import type { GeoIp } from '../enrich/geoip.js';
import { InvalidEventError, validateActivity } from './validate.js';

export type DeadLetterReason =
  | 'oversized'
  | 'not_wire_format'
  | 'unknown_schema_id'
  /** A registry id whose schema fairflag cannot use (not Avro, or not compilable). */
  | 'unsupported_schema'
  | 'wrong_schema'
  | 'undecodable'
  | 'invalid_field'
  /** Keyed so that it lands on another partition than its account's (see docs/feature-state.md). */
  | 'wrong_partition'
  /** An event id applied before with other content: the first one counts. */
  | 'conflicting_duplicate'
  /** Handling this one message threw something unexpected; the batch went on without it. */
  | 'processing_error';

export type Ingested =
  { ok: true; event: EnrichedEvent } | { ok: false; reason: DeadLetterReason; detail: string };

export function ingest(
  family: Family,
  record: unknown,
  limits: Config['validation'],
  geo: GeoIp,
  now = Date.now(),
): Ingested {
  try {
    const a = validateActivity(family, record, limits, now);
    const ip = 'ip' in a.event ? a.event.ip : null;
    const g: Geo | null = ip ? geo.lookup(ip) : null;
    return { ok: true, event: { ...a, geo: g } as EnrichedEvent };
  } catch (err) {
    if (err instanceof InvalidEventError) return { ok: false, reason: 'invalid_field', detail: err.message };
    throw err;
  }
}
