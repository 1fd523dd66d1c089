import { describe, expect, it } from 'vitest';
import { churn } from '../../../processors/ip/churn.js';
import {
  DAY,
  GEO,
  contextFor,
  ipObservation,
  login,
  paramsFor,
  payment,
  snapshot,
} from '../../support/snapshot.js';

const p = paramsFor(churn);
const WINDOW = DAY;

function evaluate(o: { personal: number; anonymizer?: number; prefixes: number; asns: number }, params = p) {
  const e = ipObservation({ eventId: 'ip-now', geo: GEO.linkoping });
  const s = snapshot()
    .distinct('personalIp', params.window, [], o.personal)
    .distinct('anonymizerIp', params.window, [], o.anonymizer ?? 0)
    .distinct('prefix', params.window, [], o.prefixes)
    .distinct('asn', params.window, [], o.asns);
  return churn.evaluate(contextFor(e, s), params);
}

describe('ip.churn', () => {
  it('is weak and ships with 10 IPs, 6 prefixes or 4 ASNs in 24 hours', () => {
    expect(churn.weak).toBe(true);
    expect([p.threshold, p.prefixThreshold, p.asnThreshold, p.window]).toEqual([10, 6, 4, WINDOW]);
  });

  it('fires on 12 distinct IPs in a day, with this event as evidence', () => {
    expect(evaluate({ personal: 12, prefixes: 3, asns: 2 })).toEqual({
      status: 'fired',
      observed: 12,
      threshold: 10,
      window: '1d', // config says 24h; formatDuration writes it as 1d
      summary: '12 IPs, 3 prefixes, 2 ASNs in 1d (IPs furthest over)',
      evidenceEventIds: ['ip-now'],
    });
  });

  it('does not fire on 3 IPs in 2 prefixes of one ASN, and reports the measure nearest its threshold', () => {
    expect(evaluate({ personal: 3, prefixes: 2, asns: 1 })).toMatchObject({
      status: 'below',
      observed: 2,
      threshold: 6,
      window: '1d', // config says 24h; formatDuration writes it as 1d
    });
  });

  it('counts VPN exits and personal addresses together, and fires at exactly the threshold', () => {
    expect(evaluate({ personal: 6, anonymizer: 4, prefixes: 2, asns: 1 })).toMatchObject({
      status: 'fired',
      observed: 10,
      threshold: 10,
    });
    expect(evaluate({ personal: 6, anonymizer: 3, prefixes: 2, asns: 1 })).toMatchObject({
      status: 'below',
      observed: 9,
      threshold: 10,
    });
  });

  it('fires on prefixes or ASNs alone, reporting the measure furthest over its threshold', () => {
    expect(evaluate({ personal: 6, prefixes: 6, asns: 2 })).toMatchObject({
      status: 'fired',
      observed: 6,
      threshold: 6,
      summary: expect.stringContaining('prefixes furthest over'),
    });
    expect(evaluate({ personal: 5, prefixes: 5, asns: 5 })).toMatchObject({
      status: 'fired',
      observed: 5,
      threshold: 4,
      summary: expect.stringContaining('ASNs furthest over'),
    });
    expect(evaluate({ personal: 5, prefixes: 5, asns: 3 })).toMatchObject({ status: 'below' });
  });

  it('is judged at successful logins only (IP observations feed its features)', () => {
    expect(churn.triggeredBy(login(), 'account')).toBe(true);
    expect(churn.triggeredBy(ipObservation({ geo: GEO.vpn }), 'account')).toBe(false);
    expect(churn.triggeredBy(login({ outcome: 'FAILURE' }), 'account')).toBe(false);
    expect(churn.triggeredBy(payment(), 'account')).toBe(false);
  });
});
