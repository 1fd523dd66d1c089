// One distance rule for two logins: impossible travel (the latest two logins) and concurrent
// sessions (a login against the open sessions) both subtract both locations' accuracy radii, so
// the same pair of logins is the same number of km to both, and to a reviewer reading both.
import { describe, expect, it } from 'vitest';
import { planEvent } from '../../processors/registry.js';
import { distanceKm, type Point } from '../../src/domain/distance.js';
import type { LoginRecord } from '../../src/features/model.js';
import { compilePolicy } from '../../src/engine/policy.js';
import { AccountFeatures } from '../../src/features/account-features.js';
import { decodeAccount, encodeAccount } from '../../src/features/persisted.js';
import { GEO, MINUTE, T0, login, shippedConfig } from '../support/snapshot.js';

const layout = compilePolicy(shippedConfig()).layout;
const point = (l: LoginRecord, accuracyKm = l.accuracyKm): Point => ({
  latitude: l.latitude!,
  longitude: l.longitude!,
  ...(accuracyKm !== undefined && { accuracyKm }),
});

/** Written by format 1 (before sessions kept their radius): one open session in Milton, US. */
const FORMAT_1 = 'AYDQn6OZNAEAAAABAWMBAlVTAAABA3MtMQAOvjCZKqBHQKpgVFInlF7ABGV2LTEAAAAAAAAAAAAAAAA=';

describe('the distance between two logins', () => {
  it('is the same to impossible travel and to concurrent sessions, in memory and as stored', () => {
    const away = login({ geo: GEO.changchun, at: T0 - 30 * MINUTE, sessionId: 's-away' });
    const here = login({ geo: GEO.milton, at: T0, sessionId: 's-here' });
    const f = new AccountFeatures('acct-1', layout);
    for (const e of [away, here])
      for (const s of planEvent(e).subjects) f.apply(e.event.occurredAt, s.ops, e.family);
    const travel = distanceKm(point(f.previousLogin!), point(f.lastLogin!));
    const other = f.openSessions(0).find((s) => s.sessionId === 's-away')!;
    expect(other.accuracyKm).toBe(GEO.changchun.accuracyKm);
    // concurrent sessions measures this login's location against the open session
    expect(distanceKm(here.geo as Point, other)).toBe(travel);
    // both radii are subtracted: less than the centres' distance by exactly their sum
    const centres = distanceKm(point(f.previousLogin!, 0), point(f.lastLogin!, 0));
    expect(centres - travel).toBeCloseTo(GEO.changchun.accuracyKm! + GEO.milton.accuracyKm!, 6);
    const stored = decodeAccount('acct-1', encodeAccount(f), layout);
    expect(stored.openSessions(0)).toEqual(f.openSessions(0));
  });

  it('reads sessions stored before they kept a radius as of unknown accuracy', () => {
    const f = decodeAccount('acct-fmt1', Buffer.from(FORMAT_1, 'base64'), layout);
    const [s] = f.openSessions(0);
    expect(s).toMatchObject({ sessionId: 's-1', eventId: 'ev-1', latitude: 47.2513, longitude: -122.3149 });
    expect(s!.accuracyKm).toBeUndefined();
    expect(f.distinct('country', 0, 5).values).toEqual(['US']);
  });
});
