import { describe, expect, it } from 'vitest';
import { planLogin } from '../../processors/login/index.js';
import { GEO, login } from '../support/snapshot.js';

const ipValues = (geo: (typeof GEO)[keyof typeof GEO]) =>
  planLogin(login({ geo })).subjects[0]!.ops.filter(
    (o) => o.op === 'value' && (o.kind === 'personalIp' || o.kind === 'anonymizerIp'),
  );

describe('login plan: which IPs say something about the person', () => {
  it('records a residential IP as personal, and the account on the shared IP', () => {
    expect(ipValues(GEO.milton)).toEqual([{ op: 'value', kind: 'personalIp', value: GEO.milton.ip }]);
    expect(planLogin(login({ geo: GEO.milton })).entities).toContainEqual({
      type: 'ip',
      id: GEO.milton.ip,
      addAccount: 'acct-1',
    });
  });

  it('records VPN and carrier-NAT addresses as shared by nature, never as personal or on the shared IP', () => {
    for (const geo of [GEO.vpn, GEO.carrier]) {
      expect(ipValues(geo)).toEqual([{ op: 'value', kind: 'anonymizerIp', value: geo.ip }]);
      expect(planLogin(login({ geo })).entities.filter((e) => e.type === 'ip')).toEqual([]);
    }
  });
});
