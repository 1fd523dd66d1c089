// The copy of an account's features kept in Redis: one binary value per account, written once per
// batch by the owning instance and read back when an account is not in memory (a cold start, a
// rebalance, an eviction, explain). It is written for every changed account of every batch, so
// it is a plain length-prefixed layout (varints, UTF-8 strings, doubles where coordinates and
// scores need them), written straight from the maps with no intermediate objects. Times are
// stored relative to the account's watermark, so most take two to four bytes. Entries are written
// in the order the maps hold them (sorting them for every write cost a tenth of the encoding):
// decoding keeps that order, so a decoded account encodes to the same bytes, and two accounts are
// compared with canonicalAccount, which does not depend on it.
//
// Layout (format 1): format byte, watermark, then each part in the order of encodeAccount below;
// a part is a count and its entries. Unknown formats and truncated or malformed values are
// refused with PersistedStateError, never guessed at.
import stringify from 'safe-stable-stringify';
import { FAMILIES } from '../domain/events.js';
import { AccountFeatures, type ForgottenValue } from './account-features.js';
import {
  CONTEXT_FIELDS,
  EVENT_KINDS,
  VALUE_KINDS,
  type ContextField,
  type ContractRecord,
  type EventKind,
  type FeatureLayout,
  type FlagState,
  type LoginRecord,
  type StoredObservation,
  type ValueKind,
} from './model.js';

export const STATE_FORMAT = 2;
/** Format 1 stored sessions without their accuracy radius; it is still read (as unknown). */
const READABLE_FORMATS = [1, STATE_FORMAT];

export class PersistedStateError extends Error {
  constructor(accountId: string, detail: string) {
    super(`stored features of ${accountId} are unreadable: ${detail}`);
    this.name = 'PersistedStateError';
  }
}

// ---------------------------------------------------------------------------------------------
// A growing buffer and a bounded reader, for non-negative and signed integers up to 2^53
// (varints), doubles and strings.

let buf = Buffer.allocUnsafe(8192);
let pos = 0;

function room(n: number): void {
  if (pos + n <= buf.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, pos + n));
  buf.copy(bigger, 0, 0, pos);
  buf = bigger;
}

function uint(n: number): void {
  room(8);
  while (n >= 128) {
    buf[pos++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
}

/** Zigzag: small magnitudes, either sign, in few bytes. */
function int(n: number): void {
  uint(n < 0 ? -n * 2 - 1 : n * 2);
}

function double(n: number): void {
  room(8);
  buf.writeDoubleLE(n, pos);
  pos += 8;
}

function str(s: string): void {
  const len = s.length;
  // at most 3 bytes per UTF-16 unit: a short string's one-byte length is known once written
  if (len < 42) {
    room(1 + len * 3);
    const start = pos + 1;
    let i = 0;
    // ids, codes and addresses are ASCII: copied by hand (Buffer.write's overhead dominated)
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) break;
      buf[start + i] = c;
    }
    const n = i === len ? len : buf.write(s, start, 'utf8');
    buf[pos] = n;
    pos = start + n;
    return;
  }
  const n = Buffer.byteLength(s, 'utf8');
  uint(n);
  room(n);
  buf.write(s, pos, 'utf8');
  pos += n;
}

function sortedKeys<K extends string>(m: ReadonlyMap<K, unknown>): K[] {
  const keys = [...m.keys()];
  return keys.length > 1 ? keys.sort() : keys;
}

class Reader {
  private at = 0;
  constructor(
    private readonly b: Buffer,
    private readonly accountId: string,
  ) {}
  fail(detail: string): never {
    throw new PersistedStateError(this.accountId, detail);
  }
  uint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.at >= this.b.length) this.fail('truncated');
      const byte = this.b[this.at++]!;
      n += (byte & 127) * scale;
      if (byte < 128) return n;
      scale *= 128;
    }
    return this.fail('a number longer than 8 bytes');
  }
  int(): number {
    const z = this.uint();
    return z % 2 ? -(z + 1) / 2 : z / 2;
  }
  double(): number {
    if (this.at + 8 > this.b.length) this.fail('truncated');
    const v = this.b.readDoubleLE(this.at);
    this.at += 8;
    return v;
  }
  str(): string {
    const n = this.uint();
    if (this.at + n > this.b.length) this.fail('truncated string');
    const s = this.b.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }

  count(): number {
    const n = this.uint();
    // every entry takes at least a byte: a count beyond what is left is corrupt, not a loop
    if (n > this.b.length - this.at) this.fail(`a count of ${n} with ${this.b.length - this.at} bytes left`);
    return n;
  }
  end(): void {
    if (this.at !== this.b.length) this.fail(`${this.b.length - this.at} bytes after the end`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

const KIND_OF_EVENT_CODE = new Map(
  (Object.entries(EVENT_KINDS) as [EventKind, string][]).map(([k, c]) => [c, k]),
);
const KIND_OF_VALUE_CODE = new Map<string, ValueKind | 'contract'>([
  ...Object.entries(VALUE_KINDS).map(([k, c]): [string, ValueKind] => [c, k as ValueKind]),
  ['k', 'contract'],
]);
const valueCode = (k: ValueKind | 'contract') => (k === 'contract' ? 'k' : VALUE_KINDS[k]);
const FIELD_OF_CODE = new Map(
  Object.entries(CONTEXT_FIELDS).map(([f, c]) => [c as string, f as ContextField]),
);

/** Contract fields in stored order; times are relative, the rating and ids are not. */
const CONTRACT_TIMES = ['startedAt', 'endedAt', 'firstPaidAt', 'lastPaidAt', 'disputedAt'] as const;

let base = 0;

/** A family's name as its index in FAMILIES (a byte), or 255 and the name for any other. */
function family(name: string): void {
  const i = FAMILY_INDEX.get(name);
  if (i !== undefined) uint(i);
  else {
    uint(255);
    str(name);
  }
}
function familyEntry(t: number, name: string): void {
  family(name);
  int(t - base);
}
const FAMILY_INDEX = new Map<string, number>(FAMILIES.map((f, i) => [f, i]));

// forEach with module-level callbacks: iterating [key, value] pairs allocated one per entry
function timedEntry(t: number, k: string): void {
  str(k);
  int(t - base);
}
function absoluteEntry(n: number, k: string): void {
  str(k);
  uint(n);
}

function timed(m: ReadonlyMap<string, number>): void {
  uint(m.size);
  m.forEach(timedEntry);
}

function absolute(m: ReadonlyMap<string, number>): void {
  uint(m.size);
  m.forEach(absoluteEntry);
}

function login(l: LoginRecord | undefined): void {
  if (!l) return uint(0);
  // presence bits: country, city, latitude, longitude, accuracy, device, anonymizer, hosting
  const bits =
    (l.country !== undefined ? 1 : 0) |
    (l.city !== undefined ? 2 : 0) |
    (l.latitude !== undefined ? 4 : 0) |
    (l.longitude !== undefined ? 8 : 0) |
    (l.accuracyKm !== undefined ? 16 : 0) |
    (l.deviceId !== undefined ? 32 : 0) |
    (l.anonymizer ? 64 : 0) |
    (l.hosting ? 128 : 0);
  uint(1 + bits);
  int(l.at - base);
  str(l.eventId);
  str(l.ip);
  if (l.country !== undefined) str(l.country);
  if (l.city !== undefined) str(l.city);
  if (l.latitude !== undefined) double(l.latitude);
  if (l.longitude !== undefined) double(l.longitude);
  if (l.accuracyKm !== undefined) double(l.accuracyKm);
  if (l.deviceId !== undefined) str(l.deviceId);
}

function observation(o: StoredObservation): void {
  str(o.signalId);
  str(o.family);
  int(o.observedAt - base);
  str(o.eventId);
  double(o.observed);
  double(o.threshold);
  str(o.window);
  str(o.summary);
  uint(o.evidenceEventIds.length);
  for (const id of o.evidenceEventIds) str(id);
}

let sections: Map<string, number> | undefined;
let sectionStart = 0;
function mark(name: string): void {
  if (!sections) return;
  sections.set(name, (sections.get(name) ?? 0) + pos - sectionStart);
  sectionStart = pos;
}

/**
 * Encodes an account's features (see the layout above); given `sizes`, adds to it the bytes each
 * part took (for the benchmark's breakdown).
 */
export function encodeAccount(a: AccountFeatures, sizes?: Map<string, number>): Buffer {
  pos = 0;
  sections = sizes;
  sectionStart = 0;
  base = a.watermark;
  room(1);
  buf[pos++] = STATE_FORMAT;
  uint(base);
  uint(a.familyWatermarks.size);
  a.familyWatermarks.forEach(familyEntry);
  mark('familyWatermarks');
  uint(a.events.size);
  for (const [k, set] of a.events) {
    str(EVENT_KINDS[k]);
    timed(set);
  }
  mark('events');
  uint(a.values.size);
  for (const [k, m] of a.values) {
    str(valueCode(k));
    timed(m);
  }
  mark('values');
  timed(a.firstSeen);
  mark('firstSeen');
  uint(a.sessions.size);
  for (const [id, s] of a.sessions) {
    str(id);
    int(s.startedAt - base);
    double(s.latitude);
    double(s.longitude);
    // format 2: the accuracy radius in whole km, 0 when unknown (nothing is subtracted then)
    uint(Math.max(0, Math.round(s.accuracyKm ?? 0)));
    str(s.eventId);
  }
  mark('sessions');
  timed(a.logouts);
  mark('logouts');
  uint(a.contextStamps.size);
  for (const [field, at] of a.contextStamps) {
    str(CONTEXT_FIELDS[field]);
    int(at - base);
    str(a.contextValue(field) ?? '');
  }
  mark('context');
  login(a.lastLogin);
  login(a.previousLogin);
  mark('logins');
  uint(a.contracts.size);
  for (const c of a.contracts.values()) contract(c);
  mark('contracts');
  uint(a.observations.size);
  for (const o of a.observations.values()) observation(o);
  mark('observations');
  uint(a.openFlags.size);
  for (const [queue, f] of a.openFlags) flag(queue, f);
  mark('openFlags');
  absolute(a.flagGenerations);
  // until when a cleared pattern mitigates: an absolute time, like the decision it came from
  absolute(a.clearedPatterns);
  timed(a.capsReached);
  mark('flagHistoryAndCaps');
  uint(a.forgotten.size);
  for (const f of a.forgotten.values()) {
    str(valueCode(f.set));
    str(f.value);
    int(f.last - base);
    int(f.droppedAt - base);
    if (f.first === undefined) uint(0);
    else {
      uint(1);
      int(f.first - base);
    }
    if (!f.contract) uint(0);
    else {
      uint(1);
      contract(f.contract);
    }
  }
  mark('forgotten');
  uint(a.seenEvents.size);
  for (const [id, s] of a.seenEvents) {
    str(id);
    int(s.at - base);
    family(s.family);
    str(s.digest);
  }
  mark('seenEvents');
  sections = undefined;
  return Buffer.from(buf.subarray(0, pos));
}

function contract(c: ContractRecord): void {
  str(c.contractId);
  let bits = 0;
  CONTRACT_TIMES.forEach((f, i) => {
    if (c[f] !== undefined) bits |= 1 << i;
  });
  if (c.rating !== undefined) bits |= 32;
  if (c.role !== undefined) bits |= 64;
  if (c.counterpart !== undefined) bits |= 128;
  if (c.endEventId !== undefined) bits |= 256;
  uint(bits);
  for (const f of CONTRACT_TIMES) if (c[f] !== undefined) int(c[f] - base);
  if (c.rating !== undefined) uint(c.rating);
  if (c.role !== undefined) str(c.role);
  if (c.counterpart !== undefined) str(c.counterpart);
  if (c.endEventId !== undefined) str(c.endEventId);
}

function flag(queue: string, f: FlagState): void {
  str(queue);
  str(f.flagId);
  uint(f.revision);
  str(f.severity);
  double(f.score);
  int(f.createdAt - base);
  int(f.updatedAt - base);
  uint(f.signals.length);
  for (const o of f.signals) observation(o);
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Decodes what encodeAccount wrote; the result answers every question exactly as the original. */
export function decodeAccount(accountId: string, bytes: Buffer, layout: FeatureLayout): AccountFeatures {
  const r = new Reader(bytes, accountId);
  if (bytes.length === 0) r.fail('empty');
  const format = bytes[0]!;
  if (!READABLE_FORMATS.includes(format))
    r.fail(`format ${format}, this version reads ${READABLE_FORMATS.join(' and ')}`);
  r.uint(); // the format byte, read as a varint (it is below 128)
  const a = new AccountFeatures(accountId, layout);
  const at0 = r.uint();
  a.watermark = at0;
  const abs = (t: number) => t + at0;
  const readFamily = (): string => {
    const i = r.uint();
    return i === 255 ? r.str() : (FAMILIES[i] ?? r.fail(`unknown family ${i}`));
  };
  const readTimed = (m: Map<string, number>) => {
    for (let n = r.count(); n > 0; n--) m.set(r.str(), abs(r.int()));
  };
  const readAbsolute = (m: Map<string, number>) => {
    for (let n = r.count(); n > 0; n--) m.set(r.str(), r.uint());
  };
  for (let n = r.count(); n > 0; n--) {
    const f = readFamily();
    a.familyWatermarks.set(f, abs(r.int()));
  }
  for (let n = r.count(); n > 0; n--) {
    const code = r.str();
    const kind = KIND_OF_EVENT_CODE.get(code) ?? r.fail(`unknown event kind "${code}"`);
    const set = new Map<string, number>();
    readTimed(set);
    a.events.set(kind, set);
  }
  for (let n = r.count(); n > 0; n--) {
    const code = r.str();
    const kind = KIND_OF_VALUE_CODE.get(code) ?? r.fail(`unknown value kind "${code}"`);
    const m = new Map<string, number>();
    readTimed(m);
    a.values.set(kind, m);
  }
  a.valuesRestored();
  readTimed(a.firstSeen);
  for (let n = r.count(); n > 0; n--) {
    const id = r.str();
    const startedAt = abs(r.int());
    const latitude = r.double();
    const longitude = r.double();
    const accuracyKm = format >= 2 ? r.uint() : 0;
    a.sessions.set(id, {
      startedAt,
      latitude,
      longitude,
      ...(accuracyKm > 0 && { accuracyKm }),
      eventId: r.str(),
    });
  }
  readTimed(a.logouts);
  for (let n = r.count(); n > 0; n--) {
    const code = r.str();
    const field = FIELD_OF_CODE.get(code) ?? r.fail(`unknown context field "${code}"`);
    const at = abs(r.int());
    a.setContext(field, r.str(), at);
  }
  const readLogin = (): LoginRecord | undefined => {
    const head = r.uint();
    if (!head) return undefined;
    const bits = head - 1;
    const l: LoginRecord = {
      at: abs(r.int()),
      eventId: r.str(),
      ip: r.str(),
      anonymizer: (bits & 64) !== 0,
      hosting: (bits & 128) !== 0,
    };
    if (bits & 1) l.country = r.str();
    if (bits & 2) l.city = r.str();
    if (bits & 4) l.latitude = r.double();
    if (bits & 8) l.longitude = r.double();
    if (bits & 16) l.accuracyKm = r.double();
    if (bits & 32) l.deviceId = r.str();
    return l;
  };
  a.lastLogin = readLogin();
  a.previousLogin = readLogin();
  const readContract = (): ContractRecord => {
    const c: ContractRecord = { contractId: r.str() };
    const bits = r.uint();
    CONTRACT_TIMES.forEach((f, i) => {
      if (bits & (1 << i)) c[f] = abs(r.int());
    });
    if (bits & 32) c.rating = r.uint();
    if (bits & 64) {
      const role = r.str();
      if (role === 'client' || role === 'freelancer') c.role = role;
      else r.fail(`unknown contract role "${role}"`);
    }
    if (bits & 128) c.counterpart = r.str();
    if (bits & 256) c.endEventId = r.str();
    return c;
  };
  for (let n = r.count(); n > 0; n--) {
    const c = readContract();
    a.contracts.set(c.contractId, c);
  }
  const readObservation = (): StoredObservation => ({
    signalId: r.str(),
    family: r.str(),
    observedAt: abs(r.int()),
    eventId: r.str(),
    observed: r.double(),
    threshold: r.double(),
    window: r.str(),
    summary: r.str(),
    evidenceEventIds: Array.from({ length: r.count() }, () => r.str()),
  });
  for (let n = r.count(); n > 0; n--) {
    const o = readObservation();
    a.observations.set(o.signalId, o);
  }
  for (let n = r.count(); n > 0; n--) {
    const queue = r.str();
    a.openFlags.set(queue, {
      flagId: r.str(),
      revision: r.uint(),
      severity: r.str(),
      score: r.double(),
      createdAt: abs(r.int()),
      updatedAt: abs(r.int()),
      signals: Array.from({ length: r.count() }, readObservation),
    });
  }
  readAbsolute(a.flagGenerations);
  readAbsolute(a.clearedPatterns);
  readTimed(a.capsReached);
  for (let n = r.count(); n > 0; n--) {
    const code = r.str();
    const set = KIND_OF_VALUE_CODE.get(code) ?? r.fail(`unknown value kind "${code}"`);
    const f: ForgottenValue = { set, value: r.str(), last: abs(r.int()), droppedAt: abs(r.int()) };
    if (r.uint()) f.first = abs(r.int());
    if (r.uint()) f.contract = readContract();
    a.forgotten.set(`${set}:${f.value}`, f);
  }
  for (let n = r.count(); n > 0; n--) {
    const id = r.str();
    a.seenEvents.set(id, { at: abs(r.int()), family: readFamily(), digest: r.str() });
  }
  r.end();
  return a;
}

/** An account's stored features as plain data, in key order, for diffs and debugging. */
export function describeAccount(
  bytes: Buffer,
  layout: FeatureLayout,
  accountId = '',
): Record<string, unknown> {
  return describeFeatures(decodeAccount(accountId, bytes, layout));
}

/** Two accounts with equal features give the same text, whatever order they learnt them in. */
export function canonicalAccount(a: AccountFeatures): string {
  // keys sorted at every depth: a login record built by a processor and one decoded differ in order
  return stringify(describeFeatures(a)) ?? '';
}

/** An account's features as plain data, in key order. */
export function describeFeatures(a: AccountFeatures): Record<string, unknown> {
  const obj = <V>(m: ReadonlyMap<string, V>) => Object.fromEntries(sortedKeys(m).map((k) => [k, m.get(k)]));
  return {
    watermark: a.watermark,
    familyWatermarks: obj(a.familyWatermarks),
    events: Object.fromEntries(sortedKeys(a.events).map((k) => [k, obj(a.events.get(k)!)])),
    values: Object.fromEntries(sortedKeys(a.values).map((k) => [k, obj(a.values.get(k)!)])),
    firstSeen: obj(a.firstSeen),
    sessions: obj(a.sessions),
    logouts: obj(a.logouts),
    context: a.context,
    contextStamps: obj(a.contextStamps),
    lastLogin: a.lastLogin ?? null,
    previousLogin: a.previousLogin ?? null,
    contracts: obj(a.contracts),
    observations: obj(a.observations),
    openFlags: sortedKeys(a.openFlags).map((queue) => ({ queue, ...a.openFlags.get(queue)! })),
    flagGenerations: obj(a.flagGenerations),
    clearedPatterns: obj(a.clearedPatterns),
    capsReached: obj(a.capsReached),
    forgotten: obj(a.forgotten),
    seenEvents: obj(a.seenEvents),
  };
}
