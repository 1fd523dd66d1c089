// The other side of a contract. A contract event is keyed by the account that acted; the other
// party's features belong to whichever instance owns that account's partition. So the acting side
// is applied where the event arrives, and the other side travels to its owner on an internal topic
// keyed by the other account, as Kafka Streams repartitions a stream: a "side" record carries the
// event and the acting account's values that pairwise signals compare (devices, IPs, instruments).
// The owner of the other side applies it, judges that side, and judges the pair: both sets of
// values are known there. If the pair is suspicious, a "pair" record takes the acting account's
// observation back to its owner.
import type { ContractEvent } from '../domain/events.js';
import type { StoredObservation, ValueKind } from '../features/model.js';

export const COUNTERPART_FORMAT = 1;

export interface SideRecord {
  v: typeof COUNTERPART_FORMAT;
  kind: 'side';
  /** The account whose side this is (the record's key). */
  accountId: string;
  event: ContractEvent;
  /** Digest of the event's content, as the acting side recorded it. */
  digest: string;
  /** The acting account's values as of the event: [value, last seen], per kind. */
  actingValues: { kind: ValueKind; values: [string, number][] }[];
}

export interface PairRecord {
  v: typeof COUNTERPART_FORMAT;
  kind: 'pair';
  accountId: string;
  eventId: string;
  at: number;
  observations: StoredObservation[];
}

export type CounterpartRecord = SideRecord | PairRecord;

/** The contract event a record comes from. */
export const sourceEventId = (r: CounterpartRecord): string =>
  r.kind === 'side' ? r.event.eventId : r.eventId;

export class CounterpartFormatError extends Error {
  constructor(detail: string) {
    super(`not a counterpart record: ${detail}`);
    this.name = 'CounterpartFormatError';
  }
}

export function encodeCounterpart(r: CounterpartRecord): Buffer {
  return Buffer.from(JSON.stringify(r));
}

/** Reads a record of the internal topic; anything else is a CounterpartFormatError. */
export function decodeCounterpart(bytes: Buffer): CounterpartRecord {
  let r: unknown;
  try {
    r = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CounterpartFormatError((err as Error).message);
  }
  if (typeof r !== 'object' || r === null) throw new CounterpartFormatError('not an object');
  const o = r as Record<string, unknown>;
  if (o['v'] !== COUNTERPART_FORMAT) throw new CounterpartFormatError(`format ${String(o['v'])}, expected 1`);
  if (typeof o['accountId'] !== 'string' || !o['accountId']) throw new CounterpartFormatError('no accountId');
  if (o['kind'] === 'side') {
    if (
      typeof o['event'] !== 'object' ||
      !o['event'] ||
      typeof o['digest'] !== 'string' ||
      !Array.isArray(o['actingValues'])
    )
      throw new CounterpartFormatError('a side record needs event, digest and actingValues');
    return o as unknown as SideRecord;
  }
  if (o['kind'] === 'pair') {
    if (typeof o['eventId'] !== 'string' || typeof o['at'] !== 'number' || !Array.isArray(o['observations']))
      throw new CounterpartFormatError('a pair record needs eventId, at and observations');
    return o as unknown as PairRecord;
  }
  throw new CounterpartFormatError(`unknown kind ${JSON.stringify(o['kind'])}`);
}
