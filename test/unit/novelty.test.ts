// "Seen before?" for country and device (processors/login/novelty.ts).
import { describe, expect, it } from 'vitest';
import { novelty } from '../../processors/login/novelty.js';
import { DAY, GEO, HOUR, T0, login, snapshot } from '../support/snapshot.js';

const WINDOW = 90 * DAY;
const e = login({ geo: GEO.changchun, deviceId: 'dev-phone' });

/** Novelty of this login's country; distinctInWindow counts this country too, as the store does. */
function countryNovelty(seen: { last?: number; first?: number }, distinctInWindow = 2) {
  return novelty(snapshot().lastSeenBefore('country', seen).view(e), 'country', distinctInWindow, WINDOW);
}

describe('novelty', () => {
  it('never seen before: new', () => {
    expect(countryNovelty({})).toEqual({ kind: 'new' });
  });

  it('seen only after this event (first >= asOf): new, as the event is the first sighting', () => {
    expect(countryNovelty({ last: T0 + HOUR, first: T0 + HOUR })).toEqual({ kind: 'new' });
    expect(countryNovelty({ last: T0, first: T0 })).toEqual({ kind: 'new' });
  });

  it('last sighting before this event and within the window: known', () => {
    expect(countryNovelty({ last: T0 - 3 * DAY, first: T0 - 60 * DAY })).toEqual({
      kind: 'known',
      lastSeen: T0 - 3 * DAY,
    });
    expect(countryNovelty({ last: T0 - WINDOW + 1, first: T0 - 200 * DAY })).toMatchObject({ kind: 'known' });
  });

  it('last sighting older than the window: new, and says when it was', () => {
    expect(countryNovelty({ last: T0 - 120 * DAY, first: T0 - 400 * DAY })).toEqual({
      kind: 'new',
      lastSeen: T0 - 120 * DAY,
    });
    expect(countryNovelty({ last: T0 - WINDOW, first: T0 - 400 * DAY })).toEqual({
      kind: 'new',
      lastSeen: T0 - WINDOW,
    });
  });

  it('seen before and after this event: known (conservatively not news)', () => {
    expect(countryNovelty({ last: T0 + HOUR, first: T0 - 10 * DAY })).toEqual({
      kind: 'known',
      lastSeen: T0 + HOUR,
    });
  });

  it('the only value in the window: unknown, there is nothing to compare with', () => {
    expect(countryNovelty({}, 1)).toEqual({
      kind: 'unknown',
      reason: 'no other country in the history window to compare with',
    });
    expect(countryNovelty({ last: T0 - 200 * DAY, first: T0 - 300 * DAY }, 1)).toMatchObject({
      kind: 'unknown',
    });
  });

  it('an event that records no such value: unknown', () => {
    const vpnLogin = login({ geo: GEO.vpn });
    expect(novelty(snapshot().view(vpnLogin), 'country', 3, WINDOW)).toEqual({
      kind: 'unknown',
      reason: 'this event carries no country',
    });
  });

  it('reads the device from its own sighting, independently of the country', () => {
    const view = snapshot()
      .lastSeenBefore('country', { last: T0 - DAY, first: T0 - 50 * DAY })
      .lastSeenBefore('device', {})
      .view(e);
    expect(novelty(view, 'country', 2, WINDOW)).toMatchObject({ kind: 'known' });
    expect(novelty(view, 'device', 2, WINDOW)).toEqual({ kind: 'new' });
  });
});
