import { describe, expect, it } from 'vitest';
import { selfDealing } from '../../../processors/contract/self-dealing.js';
import { planEvent } from '../../../processors/registry.js';
import type { ValueKind } from '../../../src/features/model.js';
import { DAY, GEO, contextFor, contract, login, paramsFor, snapshot } from '../../support/snapshot.js';

const p = paramsFor(selfDealing);
const WINDOW = 90 * DAY;

type Values = Partial<Record<ValueKind, string[]>>;
const side = (accountId: string, v: Values) =>
  (['device', 'personalIp', 'instrument', 'anonymizerIp'] as const).reduce(
    (s, kind) => s.distinct(kind, p.window, v[kind] ?? []),
    snapshot(accountId),
  );

/** A contract event evaluated for the freelancer, with the client as counterpart. */
function evaluate(freelancer: Values, client: Values, params = p) {
  const e = contract({ eventId: 'ctr-started', freelancerAccountId: 'free-1', clientAccountId: 'client-1' });
  return selfDealing.evaluate(
    contextFor(e, side('free-1', freelancer), { role: 'freelancer', counterpart: side('client-1', client) }),
    params,
  );
}

describe('contract.self_dealing', () => {
  it('is strong, sufficient alone, and ships with one shared thing in 90 days', () => {
    expect(selfDealing.weak).toBe(false);
    expect(p.strong).toBe(true);
    expect(p.sufficientAlone).toBe(true);
    expect(p.threshold).toBe(1);
    expect(p.window).toBe(WINDOW);
  });

  it('fires when client and freelancer use the same device, with the contract event as evidence', () => {
    expect(
      evaluate({ device: ['dev-laptop', 'dev-phone'] }, { device: ['dev-desktop', 'dev-laptop'] }),
    ).toEqual({
      status: 'fired',
      observed: 1,
      threshold: 1,
      window: '90d',
      summary: 'shares with counterpart client-1: device dev-laptop',
      evidenceEventIds: ['ctr-started'],
    });
  });

  it('counts each shared device, residential IP and payment instrument', () => {
    const both = { device: ['dev-laptop'], personalIp: [GEO.milton.ip], instrument: ['fp-visa-4242'] };
    expect(evaluate(both, both)).toMatchObject({
      status: 'fired',
      observed: 3,
      summary:
        'shares with counterpart client-1: device dev-laptop, IP 216.160.83.56, payment instrument fp-visa-4242',
    });
  });

  it('does not fire when nothing is shared', () => {
    expect(
      evaluate(
        { device: ['dev-a'], personalIp: [GEO.milton.ip] },
        { device: ['dev-b'], personalIp: [GEO.linkoping.ip] },
      ),
    ).toEqual({
      status: 'below',
      observed: 0,
      threshold: 1,
      window: '90d',
      summary: 'nothing shared with counterpart client-1',
    });
  });

  it('fires at exactly the threshold and not one below it', () => {
    const two = { ...p, threshold: 2 };
    expect(evaluate({ device: ['dev-a'] }, { device: ['dev-a'] }, two)).toMatchObject({
      status: 'below',
      observed: 1,
    });
    expect(
      evaluate({ device: ['dev-a'], instrument: ['fp-1'] }, { device: ['dev-a'], instrument: ['fp-1'] }, two),
    ).toMatchObject({ status: 'fired', observed: 2, threshold: 2 });
  });

  it('does not link two strangers who used the same VPN exit', () => {
    // the processors record anonymizer addresses apart from personal ones, and the signal reads only the latter
    const ops = planEvent(login({ geo: GEO.vpn })).subjects[0]!.ops;
    expect(ops).toContainEqual({ op: 'value', kind: 'anonymizerIp', value: GEO.vpn.ip });
    expect(ops).not.toContainEqual(expect.objectContaining({ kind: 'personalIp' }));
    expect(evaluate({ anonymizerIp: [GEO.vpn.ip] }, { anonymizerIp: [GEO.vpn.ip] })).toMatchObject({
      status: 'below',
      observed: 0,
    });
  });

  it('skips without a counterpart', () => {
    const e = contract();
    expect(selfDealing.evaluate(contextFor(e, side('free-1', {}), { role: 'freelancer' }), p)).toEqual({
      status: 'skipped',
      reason: 'no counterpart on this event',
    });
  });

  it('is triggered by every contract event, for both sides', () => {
    for (const action of ['STARTED', 'MILESTONE_PAID', 'ENDED', 'DISPUTED', 'REFUNDED'] as const)
      for (const role of ['client', 'freelancer'] as const)
        expect(selfDealing.triggeredBy(contract({ action }), role)).toBe(true);
    expect(selfDealing.triggeredBy(login(), 'account')).toBe(false);
  });
});
