// One account's features, held in the memory of the instance that owns the account's partition.
// This is the only implementation of the feature semantics: windows over event time, lateness per
// family, idempotent merges, retention and caps. Redis keeps an encoded copy (./persisted.ts).
//
// Every merge is order-independent: sets keyed by event id or value, last-seen times that only move
// forward and first-seen times that only move back, context where the latest event time wins,
// trimming measured from each set's own newest member. So the same events give the same features
// whatever order they arrive in (within the allowed lateness) and however often.
import { hash } from 'node:crypto';
import {
  COUNTED_ONLY,
  type AccountContext,
  type AccountOp,
  type AccountQuery,
  type ContextField,
  type ContractPatch,
  type ContractRecord,
  type CountResult,
  type DistinctResult,
  type EventKind,
  type FeatureLayout,
  type FlagState,
  type LoginRecord,
  type QueryResult,
  type SessionRecord,
  type StoredObservation,
  type ValueKind,
} from './model.js';

/** A timestamped member, as ordered for "newest first": time, then member, both descending. */
const newestFirst = (a: [string, number], b: [string, number]) =>
  b[1] - a[1] || (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0);

/** Where contract records take part in the value set's retention and cap, as "k:<id>" once did. */
const CONTRACT_VALUES = 'contract';

/** Started and not ended: context that stays whatever the age of its last sighting. */
const isOpen = (c: ContractRecord | undefined) => c?.startedAt !== undefined && c.endedAt === undefined;
/** A contract's life set aside that its start, accepted at any age, may still join: ended (the
 *  start must find it ended) or not started (its steps wait for their start). */
const awaitsStart = (f: ForgottenValue) =>
  f.contract !== undefined && (f.contract.endedAt !== undefined || f.contract.startedAt === undefined);
/** The earliest step a contract record holds (each known step writes its time). */
const earliestStep = (c: ContractRecord) =>
  Math.min(
    c.startedAt ?? Infinity,
    c.firstPaidAt ?? Infinity,
    c.lastPaidAt ?? Infinity,
    c.disputedAt ?? Infinity,
    c.endedAt ?? Infinity,
  );
export type ValueSetName = ValueKind | typeof CONTRACT_VALUES;

export interface OpenSession {
  startedAt: number;
  latitude: number;
  longitude: number;
  accuracyKm?: number;
  eventId: string;
}

/** What applying one event's ops to an account says back. */
export interface Applied {
  /** Older than the allowed lateness for its family: windowed features ignored it. */
  late: boolean;
  /** For each value op in order: when the value was last (and first) seen before this event. */
  lastSeenBefore: { last?: number; first?: number }[];
}

/**
 * A value dropped from retention or by the cap, kept for the allowed lateness: an event no newer
 * than the one that dropped it may still arrive (another family, within lateness), and in event
 * order it would have come first and kept the value, with its first sighting and contract. An
 * ended contract's is kept longer (see boundForgotten): its start may be replayed at any age.
 */
export interface ForgottenValue {
  set: ValueSetName;
  value: string;
  last: number;
  first?: number;
  contract?: ContractRecord;
  /** When its life ended: its last sighting plus the value retention (or, dropped by the cap, the
   *  newest sighting of any value then). A sighting up to this time brings it back. */
  droppedAt: number;
}

/** Remembered about an event id, to recognise a replay and a conflicting reuse of the id. */
export interface SeenEvent {
  at: number;
  family: string;
  /** A digest of the event's content. */
  digest: string;
}

/**
 * 64 bits of SHA-1 in base64url: how counted-only kinds and the replay memory keep an event id,
 * and content digests. Among one account's few hundred remembered ids a collision is out of reach.
 */
export function digestOf(text: string): string {
  return hash('sha1', text, 'base64url').slice(0, 11);
}

/**
 * digestOf an event id, remembering the last one: an event's id is digested to recognise it, to
 * remember it and for a counted-only kind, on each account it touches, one after the other.
 */
let lastEventId: string | undefined;
let lastEventKey = '';
function eventKey(eventId: string): string {
  if (eventId !== lastEventId) {
    lastEventKey = digestOf(eventId);
    lastEventId = eventId;
  }
  return lastEventKey;
}

export class AccountFeatures {
  /** Newest event time of any windowed change (what "now" is for the account's memory). */
  watermark = 0;
  /** Newest event time per family: lateness is judged per family. */
  readonly familyWatermarks = new Map<string, number>();
  readonly events = new Map<EventKind, Map<string, number>>();
  readonly values = new Map<ValueSetName, Map<string, number>>();
  /** First-seen times of the values whose novelty matters, keyed "<kind>:<value>". */
  readonly firstSeen = new Map<string, number>();
  /** Values dropped within the last allowed lateness, keyed "<set>:<value>" (see ForgottenValue). */
  readonly forgotten = new Map<string, ForgottenValue>();
  readonly sessions = new Map<string, OpenSession>();
  readonly logouts = new Map<string, number>();
  readonly contextStamps = new Map<ContextField, number>();
  context: AccountContext = {};
  lastLogin: LoginRecord | undefined;
  previousLogin: LoginRecord | undefined;
  readonly contracts = new Map<string, ContractRecord>();
  readonly observations = new Map<string, StoredObservation>();
  readonly openFlags = new Map<string, FlagState>();
  readonly flagGenerations = new Map<string, number>();
  readonly clearedPatterns = new Map<string, number>();
  /** Sets whose member cap was reached, with the time it was. */
  readonly capsReached = new Map<string, number>();
  /** Event ids applied (by digest, see remember), for as long as a replay would not be late. */
  readonly seenEvents = new Map<string, SeenEvent>();

  constructor(
    readonly accountId: string,
    private layout: FeatureLayout,
  ) {}

  /** An account known only by some of its values (the acting side of a contract, as shipped). */
  static withValues(
    accountId: string,
    layout: FeatureLayout,
    values: readonly { kind: ValueKind; values: readonly [string, number][] }[],
  ): AccountFeatures {
    const a = new AccountFeatures(accountId, layout);
    for (const { kind, values: vs } of values) for (const [v, at] of vs) a.seeValue(kind, v, at);
    return a;
  }

  setLayout(layout: FeatureLayout): void {
    this.layout = layout;
  }

  get isEmpty(): boolean {
    return this.familyWatermarks.size === 0 && this.contextStamps.size === 0;
  }

  // -------------------------------------------------------------------------------------------
  // Recognising events seen before

  /**
   * Whether an event id was applied before, with the same content or another. Ids are remembered
   * for as long as an event of their family could still be applied (its allowed lateness); an
   * older replay is late, and late events change no windowed feature.
   */
  recall(eventId: string, digest: string): 'new' | 'replay' | 'conflict' {
    const seen = this.seenEvents.get(eventKey(eventId));
    if (!seen) return 'new';
    return seen.digest === digest ? 'replay' : 'conflict';
  }

  /** What was remembered of an event id (see recall). */
  seenEvent(eventId: string): SeenEvent | undefined {
    return this.seenEvents.get(eventKey(eventId));
  }

  /**
   * Remembers an applied (not late) event, by a 64-bit digest of its id (a third of a typical id's
   * bytes in the stored copy); ids a replay could no longer reach are forgotten.
   */
  remember(eventId: string, at: number, family: string, digest: string): void {
    this.seenEvents.set(eventKey(eventId), { at, family, digest });
    // the family's watermark only grows: a replay that is not late is always still recognised
    const horizon = (this.familyWatermarks.get(family) ?? at) - this.layout.allowedLatenessMs;
    // forEach: no entry array per member, on a pass made for every event
    this.seenEvents.forEach((s, id) => {
      if (s.family === family && s.at < horizon) this.seenEvents.delete(id);
    });
  }

  /** When the ops' values were last (and first) seen, without changing anything (explain). */
  lastSeen(ops: readonly AccountOp[]): Applied['lastSeenBefore'] {
    const out: Applied['lastSeenBefore'] = [];
    for (const o of ops) {
      if (o.op !== 'value') continue;
      const last = this.values.get(o.kind)?.get(o.value);
      const first = o.noveltyName ? this.firstSeen.get(`${o.kind}:${o.value}`) : undefined;
      const seen: Applied['lastSeenBefore'][number] = {};
      if (last !== undefined) seen.last = last;
      if (first !== undefined) seen.first = first;
      out.push(seen);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Applying one event's changes

  /** Applies one event's ops at event time `at`; `family` is the event's (lateness is per family). */
  apply(at: number, ops: readonly AccountOp[], family: string | undefined): Applied {
    const lat = this.layout.allowedLatenessMs;
    const wf = family ? (this.familyWatermarks.get(family) ?? 0) : this.watermark;
    const late = wf > 0 && at < wf - lat;
    const anchor = Math.max(this.watermark, at);
    const windowed = ops.some((o) => o.op === 'event' || o.op === 'value' || o.op === 'sessionStart');
    if (!late) {
      if (windowed && at > this.watermark) this.watermark = at;
      if (family && at > wf) this.familyWatermarks.set(family, at);
    }
    // An event older than the value retention (measured from the newest value, as trimming is)
    // writes no values, first sightings or contract records: arriving first, they would be trimmed
    // at once; arriving after a newer sighting, they would merge into it. Either way the result
    // would depend on arrival order.
    const staleForValues = at <= this.newestValue() - this.layout.valueRetentionMs;

    // value ops: reads before writes, so two ops of one event do not see each other
    const lastSeenBefore = this.lastSeen(ops);
    const valueOps = ops.filter((o): o is Extract<AccountOp, { op: 'value' }> => o.op === 'value');
    const touched = new Set<EventKind | 'values' | 'sessions'>();
    if (valueOps.length && !late && !staleForValues) {
      for (const o of valueOps) {
        this.revive(o.kind, o.value, at);
        this.seeValue(o.kind, o.value, at);
        if (o.noveltyName) {
          const key = `${o.kind}:${o.value}`;
          const first = this.firstSeen.get(key);
          if (first === undefined || at < first) this.firstSeen.set(key, at);
        }
      }
      touched.add('values');
    }

    for (const o of ops) {
      switch (o.op) {
        case 'value':
          break;
        case 'event': {
          if (late) break;
          let set = this.events.get(o.kind);
          if (!set) this.events.set(o.kind, (set = new Map()));
          const id = COUNTED_ONLY.has(o.kind) ? eventKey(o.eventId) : o.eventId;
          // one event id at two times (a producer reusing an id) keeps the earliest, in any order
          const cur = set.get(id);
          if (cur === undefined || at < cur) set.set(id, at);
          touched.add(o.kind);
          break;
        }
        case 'sessionStart': {
          // A logout leaves its time behind: a start at or before it is over, whether it arrives
          // before the logout, after it, or again. The latest start of a session id wins.
          const started = this.sessions.get(o.sessionId)?.startedAt;
          const ended = this.logouts.get(o.sessionId);
          if (late || (ended !== undefined && ended >= at) || (started !== undefined && started > at)) break;
          this.sessions.set(o.sessionId, {
            startedAt: at,
            latitude: o.latitude,
            longitude: o.longitude,
            ...(o.accuracyKm !== undefined && { accuracyKm: o.accuracyKm }),
            eventId: o.eventId,
          });
          touched.add('sessions');
          break;
        }
        case 'sessionEnd': {
          const started = this.sessions.get(o.sessionId)?.startedAt;
          if (started !== undefined && started <= at) this.sessions.delete(o.sessionId);
          if (!late) {
            const cur = this.logouts.get(o.sessionId);
            if (cur === undefined || at > cur) this.logouts.set(o.sessionId, at);
            touched.add('sessions');
          }
          break;
        }
        case 'context':
          // accepted whatever its age: the value with the latest event time wins
          if (at >= (this.contextStamps.get(o.field) ?? -1)) this.setContext(o.field, o.value, at);
          break;
        case 'login': {
          // the latest two successful logins, by time then event id: the same two in any order
          // (impossible travel compares them)
          const rec = { ...o.login, at };
          if (later(rec, this.lastLogin)) {
            this.previousLogin = this.lastLogin;
            this.lastLogin = rec;
          } else if (rec.eventId !== this.lastLogin?.eventId && later(rec, this.previousLogin)) {
            this.previousLogin = rec;
          }
          break;
        }
        case 'contract': {
          // A start is context, accepted whatever its age: a contract started 425 days ago that
          // arrives after newer events still runs. An older step is no window's business but
          // must reach its life, in any order: a late end must end the contract, or a start
          // replayed or arriving after it would bring the contract back as open.
          const held = this.contracts.get(o.contractId);
          if (staleForValues && o.patch.startedAt === undefined) {
            if (!held || at + this.layout.valueRetentionMs < this.lifeBegan(o.contractId, held)) {
              this.setAside(o.contractId, at, o.patch);
              break;
            }
            // a step of the life held: merged into it, whatever came between (no new life)
          } else {
            if (this.amendEarlierLife(o.contractId, at, o.patch, held)) break;
            if (!held && this.beforeLifeSetAside(o.contractId, at)) break;
            this.revive(CONTRACT_VALUES, o.contractId, at);
          }
          this.contracts.set(
            o.contractId,
            mergeContract(this.contracts.get(o.contractId), o.contractId, o.patch),
          );
          this.seeValue(CONTRACT_VALUES, o.contractId, at);
          touched.add('values');
          break;
        }
      }
    }
    this.bound(touched, anchor);
    if (this.forgotten.size) this.boundForgotten();
    return { late, lastSeenBefore };
  }

  /**
   * A value's life, before this sighting is recorded. A value expires the value retention after
   * its last sighting: seen later than that, it starts afresh (its first sighting and contract
   * record are history no window reaches); the old life is kept aside for the lateness, because
   * an earlier sighting may still arrive and join the two, as it would have in event order. Seen
   * no later than that, it continues, and a life dropped meanwhile by a newer event (trimming)
   * comes back.
   */
  private revive(set: ValueSetName, value: string, at: number): void {
    const key = `${set}:${value}`;
    const last = this.values.get(set)?.get(value);
    const open = set === CONTRACT_VALUES && isOpen(this.contracts.get(value));
    if (last !== undefined && !open && at > last + this.layout.valueRetentionMs) {
      this.forgetValue(set, value, last + this.layout.valueRetentionMs);
      return;
    }
    const f = this.forgotten.get(key);
    if (!f || at > f.droppedAt) return;
    this.forgotten.delete(key);
    this.seeValue(set, value, f.last);
    if (f.first !== undefined) this.firstSeen.set(key, Math.min(f.first, this.firstSeen.get(key) ?? f.first));
    if (f.contract) {
      const cur = this.contracts.get(value);
      this.contracts.set(value, cur ? mergeContract(f.contract, value, cur) : f.contract);
    }
  }

  /**
   * Beyond the lateness no event may still come before the one that dropped a value, so its life
   * kept aside goes. But a contract's start is accepted whatever its age: an ended contract's
   * record stays, so that its start replayed later (a topic read again from the beginning) finds
   * the contract ended instead of opening it again, and so do steps that never had their start.
   * The newest `caps.values` of those are kept.
   */
  private boundForgotten(): void {
    const horizon = this.watermark - this.layout.allowedLatenessMs;
    let kept = 0;
    for (const [key, f] of this.forgotten) {
      if (awaitsStart(f)) kept++;
      else if (f.droppedAt < horizon) this.forgotten.delete(key);
    }
    if (kept <= this.layout.caps.values) return;
    const oldest = [...this.forgotten]
      .filter(([, f]) => awaitsStart(f))
      .sort(([ka, a], [kb, b]) => a.droppedAt - b.droppedAt || cmp(ka, kb));
    for (const [key] of oldest.slice(0, kept - this.layout.caps.values)) this.forgotten.delete(key);
  }

  /**
   * A contract step older than the value retention that belongs to no life the account holds:
   * kept aside with the dropped values (kept past the lateness, see boundForgotten), where a start
   * or step within the retention of it brings it back (revive), as event order would have joined
   * them.
   */
  private setAside(contractId: string, at: number, patch: ContractPatch): void {
    const key = `${CONTRACT_VALUES}:${contractId}`;
    const f = this.forgotten.get(key);
    // one life per contract is kept aside, the newest: a step more than the retention before it
    // belongs to an earlier life, one more than the retention after it to a later one
    if (!f || at > f.droppedAt) {
      const contract = mergeContract(undefined, contractId, patch);
      const droppedAt = at + this.layout.valueRetentionMs;
      this.forgotten.set(key, { set: CONTRACT_VALUES, value: contractId, last: at, droppedAt, contract });
      return;
    }
    if (!this.beforeLifeSetAside(contractId, at)) this.joinSetAside(f, at, patch);
  }

  /** Merges a step into the contract's life kept aside, which then lasts the retention past it. */
  private joinSetAside(f: ForgottenValue, at: number, patch: ContractPatch): void {
    f.contract = mergeContract(f.contract, f.value, patch);
    if (at > f.last) f.last = at;
    if (at + this.layout.valueRetentionMs > f.droppedAt) f.droppedAt = at + this.layout.valueRetentionMs;
  }

  /**
   * A contract step (a late start, accepted whatever its age) of the life before the current one:
   * the id was seen again more than the value retention after that life's last sighting, which
   * began a new life, and this step is older than the new life's earliest by more than the
   * retention, so in event order it would not have joined the two either. It goes to the earlier
   * life, kept aside among the forgotten values (revive), and leaves the current one alone:
   * applied in arrival order, it would otherwise merge the two lives, and applying it again would
   * change the state. Without an earlier life on record it is the current life's own (a start
   * arriving after the life's later steps).
   */
  private amendEarlierLife(
    contractId: string,
    at: number,
    patch: ContractPatch,
    held: ContractRecord | undefined,
  ): boolean {
    if (!held) return false;
    const f = this.forgotten.get(`${CONTRACT_VALUES}:${contractId}`);
    if (!f || at > f.droppedAt) return false;
    if (at + this.layout.valueRetentionMs >= this.lifeBegan(contractId, held)) return false;
    this.joinSetAside(f, at, patch);
    return true;
  }

  /**
   * Whether a step is older than the contract's life kept aside by more than the retention: it
   * belongs to a life before that one, which is no longer kept, and would wrongly join (or, a
   * start, reopen) the later one. Only the newest life of a contract id is kept aside.
   */
  private beforeLifeSetAside(contractId: string, at: number): boolean {
    const f = this.forgotten.get(`${CONTRACT_VALUES}:${contractId}`);
    if (!f || at > f.droppedAt) return false;
    return (
      at + this.layout.valueRetentionMs < Math.min(f.last, f.contract ? earliestStep(f.contract) : Infinity)
    );
  }

  /** When the life of a contract held began: no later than its earliest step or last sighting. */
  private lifeBegan(contractId: string, held: ContractRecord): number {
    return Math.min(earliestStep(held), this.values.get(CONTRACT_VALUES)?.get(contractId) ?? Infinity);
  }

  private seeValue(set: ValueSetName, value: string, at: number): void {
    let m = this.values.get(set);
    if (!m) this.values.set(set, (m = new Map()));
    const cur = m.get(value);
    if (cur === undefined || at > cur) m.set(value, at);
    if (at > this.newestSeen) this.newestSeen = at;
  }

  /**
   * The newest sighting of any value. Trimming and the cap never drop the newest, so it only
   * grows: kept rather than found again for every event (a decoded account finds it once).
   */
  private newestSeen = -Infinity;
  private newestValue(): number {
    return this.newestSeen;
  }

  /** After the value sets were filled directly (a stored copy read back). */
  valuesRestored(): void {
    this.newestSeen = -Infinity;
    for (const m of this.values.values())
      for (const t of m.values()) if (t > this.newestSeen) this.newestSeen = t;
  }

  /** Sets a context field as of `at` (also how a stored copy is read back). */
  setContext(field: ContextField, value: string, at: number): void {
    this.contextStamps.set(field, at);
    const c = this.context;
    switch (field) {
      case 'createdAt':
        c.createdAt = Number(value);
        break;
      case 'accountType':
        c.accountType = value;
        break;
      case 'identity':
        c.identityVerified = value === '1';
        c.identityChangedAt = at;
        break;
      case 'stats': {
        // "contracts|hours|earnings", an empty part when the platform did not say
        const [contracts, hours, earnings] = value.split('|').map((p) => (p === '' ? undefined : Number(p)));
        delete c.lifetimeCompletedContracts;
        delete c.lifetimePaidHours;
        delete c.lifetimeEarnings;
        if (contracts !== undefined) c.lifetimeCompletedContracts = contracts;
        if (hours !== undefined) c.lifetimePaidHours = hours;
        if (earnings !== undefined) c.lifetimeEarnings = earnings;
        break;
      }
    }
  }

  /** The raw context values, as the ops wrote them (for persistence). */
  contextValue(field: ContextField): string | undefined {
    const c = this.context;
    switch (field) {
      case 'createdAt':
        return c.createdAt === undefined ? undefined : String(c.createdAt);
      case 'accountType':
        return c.accountType;
      case 'identity':
        return c.identityVerified === undefined ? undefined : c.identityVerified ? '1' : '0';
      case 'stats':
        if (!this.contextStamps.has('stats')) return undefined;
        return [c.lifetimeCompletedContracts, c.lifetimePaidHours, c.lifetimeEarnings]
          .map((v) => (v === undefined ? '' : String(v)))
          .join('|');
    }
  }

  /** Drops what no window can see and caps what could grow without bound. */
  private bound(touched: Set<EventKind | 'values' | 'sessions'>, anchor: number): void {
    const { caps } = this.layout;
    for (const t of touched) {
      if (t === 'values') this.boundValues(anchor);
      else if (t === 'sessions') this.boundSessions(anchor);
      else {
        const set = this.events.get(t)!;
        const horizon = maxOf(set.values()) - this.layout.eventRetentionMs[t];
        set.forEach((at, id) => {
          if (at <= horizon) set.delete(id);
        });
        if (set.size > caps.eventsPerKind) {
          for (const [id] of oldestFirst(set).slice(0, set.size - caps.eventsPerKind)) set.delete(id);
          this.capsReached.set(`e:${t}`, anchor);
        }
        if (!set.size) this.events.delete(t);
      }
    }
  }

  private boundValues(anchor: number): void {
    const newest = this.newestValue();
    const horizon = newest - this.layout.valueRetentionMs;
    let count = 0;
    this.values.forEach((m, set) =>
      m.forEach((at, v) => {
        // dropped when its life has ended (see revive): a sighting up to then brings it back; an
        // open contract lives until it ends (the long-running-contract mitigation), within the cap
        if (at <= horizon && !(set === CONTRACT_VALUES && isOpen(this.contracts.get(v))))
          this.forgetValue(set, v, at + this.layout.valueRetentionMs);
        else count++;
      }),
    );
    const cap = this.layout.caps.values;
    if (count <= cap) return;
    const all: [ValueSetName, string, number][] = [];
    for (const [set, m] of this.values) for (const [v, at] of m) all.push([set, v, at]);
    all.sort((a, b) => a[2] - b[2] || cmp(a[0], b[0]) || cmp(a[1], b[1]));
    for (const [set, v] of all.slice(0, all.length - cap)) this.forgetValue(set, v, newest);
    this.capsReached.set('v', anchor);
  }

  /**
   * A value forgotten is forgotten everywhere: its first sighting, its contract record (kept aside
   * for the lateness, see ForgottenValue).
   */
  private forgetValue(set: ValueSetName, value: string, droppedAt: number): void {
    const m = this.values.get(set)!;
    const last = m.get(value)!;
    m.delete(value);
    if (!m.size) this.values.delete(set);
    const key = `${set}:${value}`;
    const f: ForgottenValue = { set, value, last, droppedAt };
    if (set === CONTRACT_VALUES) {
      const c = this.contracts.get(value);
      if (c) f.contract = c;
      this.contracts.delete(value);
    } else {
      const first = this.firstSeen.get(key);
      if (first !== undefined) f.first = first;
      this.firstSeen.delete(key);
    }
    this.forgotten.set(key, f);
  }

  private boundSessions(anchor: number): void {
    // sessions and logouts age together, from the newest of either; passes with no copies, since
    // this runs for most logins and the cap is rarely reached
    let newest = -Infinity;
    this.sessions.forEach((s) => {
      if (s.startedAt > newest) newest = s.startedAt;
    });
    this.logouts.forEach((at) => {
      if (at > newest) newest = at;
    });
    const horizon = newest - this.layout.sessionRetentionMs;
    this.sessions.forEach((s, id) => {
      if (s.startedAt <= horizon) this.sessions.delete(id);
    });
    this.logouts.forEach((at, id) => {
      if (at <= horizon) this.logouts.delete(id);
    });
    const cap = this.layout.caps.sessions;
    if (this.sessions.size + this.logouts.size <= cap) return;
    // the oldest go, a logout named "!<session>" among them (the order ties are broken in)
    const kept: [string, number][] = [];
    this.sessions.forEach((s, id) => kept.push([id, s.startedAt]));
    this.logouts.forEach((at, id) => kept.push([`!${id}`, at]));
    kept.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [m] of kept.slice(0, kept.length - cap))
      if (m.startsWith('!')) this.logouts.delete(m.slice(1));
      else this.sessions.delete(m);
    this.capsReached.set('s', anchor);
  }

  // -------------------------------------------------------------------------------------------
  // Signal memory, flags, reviews

  /**
   * Remembers a signal's observations, one per signal: a new one replaces the stored one only if
   * it brings evidence the stored one lacks, so the same events seen again change nothing. Then
   * forgets observations older than the correlation window, measured from the account's newest
   * event as of this event.
   */
  rememberObservations(at: number, observations: readonly StoredObservation[], correlationWindowMs: number) {
    for (const o of observations) {
      const cur = this.observations.get(o.signalId);
      if (!cur || o.evidenceEventIds.some((id) => !cur.evidenceEventIds.includes(id)))
        this.observations.set(o.signalId, o);
    }
    const horizon = Math.max(this.watermark, at) - correlationWindowMs;
    this.observations.forEach((o, id) => {
      if (o.observedAt <= horizon) this.observations.delete(id);
    });
  }

  /** Closes the open flag of a queue if it is the one named; returns its state, or undefined. */
  closeFlag(queue: string, flagId: string): FlagState | undefined {
    const open = this.openFlags.get(queue);
    if (open?.flagId !== flagId) return undefined;
    this.openFlags.delete(queue);
    this.flagGenerations.set(queue, (this.flagGenerations.get(queue) ?? 0) + 1);
    return open;
  }

  clearPattern(pattern: string, untilMs: number): void {
    if (untilMs > (this.clearedPatterns.get(pattern) ?? 0)) this.clearedPatterns.set(pattern, untilMs);
  }

  /** Forgets remembered observations of these signals (a reviewer saw them and cleared them). */
  forgetObservations(signalIds: Iterable<string>): void {
    for (const id of signalIds) this.observations.delete(id);
  }

  // -------------------------------------------------------------------------------------------
  // Questions, relative to an event's time `t`

  answer(q: AccountQuery, t: number): QueryResult {
    switch (q.q) {
      case 'count':
        return this.count(q.kind, t + q.from, t + q.to, q.maxIds);
      case 'distinct':
        return this.distinct(q.kind, t + q.from, q.maxValues);
      case 'sessions':
        return this.openSessions(t + q.from);
      case 'contracts':
        return this.contractList();
    }
  }

  /** Events of a kind with time in (lo, hi]; ids newest first, at most maxIds. */
  count(kind: EventKind, lo: number, hi: number, maxIds: number): CountResult {
    // their sets hold digests, not event ids: named as evidence they would point at nothing
    if (maxIds > 0 && COUNTED_ONLY.has(kind))
      throw new Error(`${kind} events are only counted: their ids are not kept`);
    const set = this.events.get(kind);
    if (!set) return { n: 0, ids: [] };
    if (maxIds <= 0) {
      let n = 0;
      for (const at of set.values()) if (at > lo && at <= hi) n++;
      return { n, ids: [] };
    }
    const hits: [string, number][] = [];
    set.forEach((at, id) => {
      if (at > lo && at <= hi) hits.push([id, at]);
    });
    if (!hits.length) return { n: 0, ids: [] };
    if (hits.length > 1) hits.sort(newestFirst);
    return {
      n: hits.length,
      ids: hits.slice(0, maxIds).map(([id]) => id),
    };
  }

  /** Distinct values of a kind last seen after `since`, newest first. */
  distinct(kind: ValueKind, since: number, maxValues: number): DistinctResult {
    const m = this.values.get(kind);
    if (!m) return { n: 0, values: [] };
    if (maxValues <= 0) {
      let n = 0;
      for (const at of m.values()) if (at > since) n++;
      return { n, values: [] };
    }
    const hits: [string, number][] = [];
    m.forEach((at, v) => {
      if (at > since) hits.push([v, at]);
    });
    if (!hits.length) return { n: 0, values: [] };
    if (hits.length > 1) hits.sort(newestFirst);
    return {
      n: hits.length,
      values: hits.slice(0, maxValues).map(([v]) => v),
    };
  }

  /** Sessions started after `since` and not logged out, newest first. */
  openSessions(since: number): SessionRecord[] {
    const out: SessionRecord[] = [];
    for (const [sessionId, s] of this.sessions) if (s.startedAt > since) out.push({ sessionId, ...s });
    return out.sort((a, b) => newestFirst([a.sessionId, a.startedAt], [b.sessionId, b.startedAt]));
  }

  contractList(): ContractRecord[] {
    return [...this.contracts.values()].sort((a, b) => (a.contractId < b.contractId ? -1 : 1));
  }
}

/** Whether login `a` comes after `b` (by time, then event id); anything comes after none. */
function later(a: LoginRecord, b: LoginRecord | undefined): boolean {
  return !b || a.at > b.at || (a.at === b.at && a.eventId > b.eventId);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function maxOf(times: Iterable<number>): number {
  let max = -Infinity;
  for (const t of times) if (t > max) max = t;
  return max;
}

function oldestFirst(set: Map<string, number>): [string, number][] {
  return [...set].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * Merges a contract event's fields into the record: start and first payment the earliest, last
 * payment, dispute and end the latest. The end's event id and rating are those of the latest end
 * (then the greater id and rating), not of whichever ENDED event arrived last: both sides may end
 * a contract, and a replay must not bring back the other one.
 */
export function mergeContract(
  cur: ContractRecord | undefined,
  contractId: string,
  patch: ContractPatch,
): ContractRecord {
  const rec: ContractRecord = { ...cur, contractId };
  if (patch.endEventId !== undefined || patch.rating !== undefined || patch.endedAt !== undefined) {
    const later =
      (patch.endedAt ?? -1) !== (rec.endedAt ?? -1)
        ? (patch.endedAt ?? -1) > (rec.endedAt ?? -1)
        : (patch.endEventId ?? '') !== (rec.endEventId ?? '')
          ? (patch.endEventId ?? '') > (rec.endEventId ?? '')
          : (patch.rating ?? -1) > (rec.rating ?? -1);
    if (later) {
      delete rec.endEventId;
      delete rec.rating;
      if (patch.endEventId !== undefined) rec.endEventId = patch.endEventId;
      if (patch.rating !== undefined) rec.rating = patch.rating;
    }
  }
  const min = (a: number | undefined, b: number) => (a === undefined ? b : Math.min(a, b));
  const max = (a: number | undefined, b: number) => (a === undefined ? b : Math.max(a, b));
  if (patch.startedAt !== undefined) rec.startedAt = min(rec.startedAt, patch.startedAt);
  if (patch.firstPaidAt !== undefined) rec.firstPaidAt = min(rec.firstPaidAt, patch.firstPaidAt);
  if (patch.lastPaidAt !== undefined) rec.lastPaidAt = max(rec.lastPaidAt, patch.lastPaidAt);
  if (patch.disputedAt !== undefined) rec.disputedAt = max(rec.disputedAt, patch.disputedAt);
  if (patch.endedAt !== undefined) rec.endedAt = max(rec.endedAt, patch.endedAt);
  if (patch.role !== undefined) rec.role = patch.role;
  if (patch.counterpart !== undefined) rec.counterpart = patch.counterpart;
  return rec;
}
