import { describe, expect, it } from 'vitest';
import { planEvent } from '../../../processors/registry.js';
import { sharedByAccounts } from '../../../processors/ip/shared-by-accounts.js';
import type { EnrichedEvent, Geo } from '../../../src/domain/events.js';
import {
  DAY,
  GEO,
  account,
  contextFor,
  contract,
  entity,
  ipObservation,
  login,
  paramsFor,
  payment,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(sharedByAccounts);
const accounts = (n: number) => Array.from({ length: n }, (_, i) => `acct-${n - i}`);

function onIp(n: number, geo: Geo = GEO.linkoping, capped = false, params = p) {
  const e = ipObservation({ eventId: 'ip-now', geo, accountId: 'acct-1' });
  const entities = { ip: entity('ip', geo.ip, accounts(n), capped) };
  return sharedByAccounts.evaluate(contextFor(e, snapshot(), { entities }), params);
}

describe('ip.shared_by_accounts', () => {
  it('ships with 4 accounts on one IP in 7 days', () => {
    expect(sharedByAccounts.weak).toBe(false);
    expect(p.threshold).toBe(4);
    expect(p.window).toBe(7 * DAY);
    expect(sharedByAccounts.needs(p)).toEqual({ account: [], entity: { type: 'ip', windowMs: 7 * DAY } });
  });

  it('fires on 5 accounts on one residential IP, with this event as evidence', () => {
    expect(onIp(5)).toEqual({
      status: 'fired',
      observed: 5,
      threshold: 4,
      window: '7d',
      summary: '5 accounts on 89.160.20.112 in 7d: acct-5, acct-4, acct-3, acct-2, acct-1',
      evidenceEventIds: ['ip-now'],
    });
  });

  it('does not fire on 2 accounts (a couple at home)', () => {
    expect(onIp(2)).toMatchObject({ status: 'below', observed: 2, threshold: 4, window: '7d' });
  });

  it('fires at exactly the threshold and not one below it', () => {
    expect(onIp(4)).toMatchObject({ status: 'fired', observed: 4 });
    expect(onIp(3)).toMatchObject({ status: 'below', observed: 3 });
  });

  it('says when the per-entity account cap was reached', () => {
    const r = onIp(4, GEO.linkoping, true);
    expect(r.status !== 'skipped' && r.summary).toContain('account cap reached');
  });

  it.each([
    ['a VPN exit', GEO.vpn],
    ['a Tor exit', GEO.tor],
    ['a hosting provider', GEO.hosting],
    ['a mobile carrier NAT', GEO.carrier],
  ])('skips %s, where strangers share one address, and says why', (_, geo) => {
    expect(onIp(50, geo)).toEqual({
      status: 'skipped',
      reason: 'anonymizer, hosting or carrier-NAT address',
    });
    expect(sharedByAccounts.triggeredBy(ipObservation({ geo }), 'account')).toBe(false);
    // nor is the account recorded on such an IP at all
    expect(planEvent(ipObservation({ geo })).entities.filter((x) => x.type === 'ip')).toEqual([]);
  });

  it('is triggered by events that put an account on a residential IP; failed logins are the attacker', () => {
    const triggers: [EnrichedEvent, boolean][] = [
      [login({ geo: GEO.milton }), true],
      [login({ outcome: 'FAILURE', geo: GEO.milton }), false],
      [login({ outcome: 'LOGOUT', geo: GEO.milton }), false],
      [ipObservation({ geo: GEO.milton }), true],
      [payment({ geo: GEO.milton }), true],
      [contract({ geo: GEO.milton }), true],
      [account({ geo: GEO.milton }), true],
      [ipObservation({ geo: null }), false],
    ];
    for (const [e, expected] of triggers)
      expect([e.family, sharedByAccounts.triggeredBy(e, 'account')]).toEqual([e.family, expected]);
  });

  it('skips when the store returned no IP entity', () => {
    const e = ipObservation({ geo: GEO.milton });
    expect(sharedByAccounts.evaluate(contextFor(e, snapshot()), p)).toEqual({
      status: 'skipped',
      reason: 'no IP on this event',
    });
  });
});
