// Issue 18's stories through the live pipeline on the real Kafka, registry and Redis: what the
// flag contract promises reviewers and members, end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR } from '../../src/scenarios/reference.js';
import { isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';
import { accountSharing, newAgency } from '../support/stories.js';

describe('issue 18 through Kafka', () => {
  let h: Harness;
  const run = Date.now().toString(36);
  const t0 = Date.now() - 4 * DAY;
  const shared = `acct-sharing-${run}`;
  const once = `acct-sharing-once-${run}`;
  const agency = `acct-agency-${run}`;
  const client = `acct-agency-client-${run}`;

  beforeAll(async () => {
    h = await new Harness(isolatedConfig('promises')).start();
    // one phase per day, as the days would arrive
    const sharing = accountSharing(shared, t0, 3);
    const single = accountSharing(once, t0 + HOUR, 1);
    // the agency's account history first: another topic than its contract events
    const scam = newAgency(agency, client, Date.now() - 2 * HOUR);
    const [history, contracts] = [
      scam.filter((e) => e.family === 'account'),
      scam.filter((e) => e.family === 'contract'),
    ];
    await h.publishPhases([
      [...sharing.slice(0, 2), ...single, ...history],
      [...sharing.slice(2, 4), ...contracts],
      sharing.slice(4),
    ]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('1. account sharing on three days reaches review: one identity flag with each episode as evidence; one day alone does not', async () => {
    const flags = await h.flags();
    const mine = flags.filter((f) => f.accountId === shared);
    expect(mine.map((f) => [f.reviewQueue, f.severity, f.action])).toEqual([['identity', 'low', 'REVIEW']]);
    const sharing = mine[0]!.signals.find((s) => s.id === 'login.concurrent_distant_sessions')!;
    expect(sharing.observed).toBe(3);
    expect(sharing.summary).toMatch(/^3 episode\(s\) in 30d of sessions open at once far apart/);
    const events = accountSharing(shared, t0, 3);
    expect(sharing.evidenceEventIds.sort()).toEqual(
      [events[1]!, events[3]!, events[4]!, events[5]!].map((e) => e.event.eventId).sort(),
    );
    expect(mine[0]!.notice.category).toBe('Identity');
    expect(flags.filter((f) => f.accountId === once)).toEqual([]);
  });

  it('3. a brand-new verified agency disputed for non-delivery after its first milestone is reviewed; verified identity is not applicable to contracts', async () => {
    const mine = (await h.flags()).filter((f) => f.accountId === agency);
    expect(mine.map((f) => [f.reviewQueue, f.severity])).toEqual([['contracts', 'medium']]);
    expect(mine[0]!.signals.map((s) => s.id)).toEqual(['contract.first_payment_then_dispute']);
    expect(mine[0]!.mitigations).toEqual([]);
    expect(mine[0]!.notApplicableMitigations.map((m) => m.id)).toEqual(['verified_identity']);
    expect(mine[0]!.notApplicableMitigations[0]!.reason).toMatch(/says nothing about contracts concerns/);
    expect((await h.flags()).filter((f) => f.accountId === client)).toEqual([]);
  });
});
