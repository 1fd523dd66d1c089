// What no single partition owns: the accounts seen on a shared entity (an IP, a device, a payment
// instrument). These sets live in Redis and every instance writes to them. A batch reads the sets
// its events ask about once, before its events are judged; each event then sees that read plus
// the sightings of the events before it in the batch (this overlay), and the batch's sightings
// are written afterwards, merged per entity (the latest sighting per account). So within one
// partition the answers are exactly those of feeding the events one at a time; what other
// partitions wrote meanwhile is seen from the next batch on (see docs/feature-state.md).
import { ENTITY_TYPES, type EntitySnapshot, type EntityType, type FeatureLayout } from './model.js';

export interface EntityRef {
  type: EntityType;
  id: string;
}

/** An entity's accounts with their last-seen event time, as read or as the batch leaves them. */
export interface EntityAccounts {
  accounts: Map<string, number>;
  capped: boolean;
}

/** The batch's changes to one entity, merged: what the backend writes. */
export interface EntityUpdate {
  ref: EntityRef;
  /** Account -> latest sighting in the batch. */
  sightings: Map<string, number>;
  /** Members last seen at or before this time are out of every window. */
  trimBefore: number;
  retentionMs: number;
  cap: number;
  /** What the batch's read and sightings say the write must do (the set was read first). */
  trim: boolean;
  overCap: boolean;
  /** The set reached its cap in this batch (the marker is new). */
  newlyCapped: boolean;
}

export const entityKey = (r: EntityRef) => `${ENTITY_TYPES[r.type]}:${r.id}`;

export class EntityOverlay {
  private readonly read: ReadonlyMap<string, EntityAccounts>;
  private readonly known = new Map<string, EntityAccounts>();
  private readonly pending = new Map<string, { ref: EntityRef; sightings: Map<string, number> }>();

  constructor(
    read: ReadonlyMap<string, EntityAccounts>,
    private readonly layout: FeatureLayout,
  ) {
    this.read = read;
    for (const [k, v] of read) this.known.set(k, { accounts: new Map(v.accounts), capped: v.capped });
  }

  /** Records that `account` was seen on the entity at `at`; the set stays within retention and cap. */
  see(ref: EntityRef, account: string, at: number): void {
    const key = entityKey(ref);
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = { ref, sightings: new Map() }));
    p.sightings.set(account, Math.max(p.sightings.get(account) ?? at, at));
    const e = this.known.get(key);
    if (!e) throw new Error(`entity ${key} was not read for this batch`);
    const cur = e.accounts.get(account);
    if (cur !== undefined && cur >= at) return; // nothing new: the set is as it was
    e.accounts.set(account, at);
    // trimmed only when this sighting is the newest (otherwise the horizon did not move)
    let newest = at;
    for (const t of e.accounts.values()) if (t > newest) newest = t;
    if (newest === at) {
      const horizon = at - this.layout.entityRetentionMs[ref.type];
      e.accounts.forEach((t, a) => {
        if (t <= horizon) e.accounts.delete(a);
      });
    }
    const cap = this.layout.caps.accountsPerEntity;
    if (e.accounts.size > cap) {
      // a shared NAT or a card-testing wave: keep the most recent accounts, and say so
      const oldest = [...e.accounts].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1));
      for (const [a] of oldest.slice(0, e.accounts.size - cap)) e.accounts.delete(a);
      e.capped = true;
    }
  }

  /** Distinct accounts seen on the entity after `since`, newest first (at most maxIds named). */
  accountsOn(ref: EntityRef, since: number, maxIds: number): EntitySnapshot {
    const e = this.known.get(entityKey(ref));
    if (!e) throw new Error(`entity ${entityKey(ref)} was not read for this batch`);
    // only the accounts in the window are copied out: most questions ask about a short one
    const hits: [string, number][] = [];
    e.accounts.forEach((t, a) => {
      if (t > since) hits.push([a, t]);
    });
    if (hits.length > 1) hits.sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? 1 : x[0] > y[0] ? -1 : 0));
    return {
      type: ref.type,
      id: ref.id,
      accounts: { n: hits.length, values: hits.slice(0, maxIds).map(([a]) => a) },
      capped: e.capped,
    };
  }

  updates(): EntityUpdate[] {
    return [...this.pending.values()].map(({ ref, sightings }) => {
      const retentionMs = this.layout.entityRetentionMs[ref.type];
      const key = entityKey(ref);
      const before = this.read.get(key)!;
      const after = this.known.get(key)!;
      const newest = Math.max(...sightings.values(), ...before.accounts.values());
      const trimBefore = newest - retentionMs;
      // what the stored set holds once the sightings are merged, before trimming: the write
      // trims and caps only when that needs it
      const merged = new Map(before.accounts);
      for (const [a, t] of sightings) merged.set(a, Math.max(merged.get(a) ?? t, t));
      let kept = 0;
      let trim = false;
      for (const t of merged.values()) {
        if (t <= trimBefore) trim = true;
        else kept++;
      }
      const cap = this.layout.caps.accountsPerEntity;
      return {
        ref,
        sightings,
        trimBefore,
        retentionMs,
        cap,
        trim,
        overCap: kept > cap,
        newlyCapped: after.capped && !before.capped,
      };
    });
  }
}
