// The reference scenarios of shared/scenarios.md through Kafka, asserting exactly what that file
// expects: no flag for the travelling freelancer, one high account-security flag for the takeover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreAccount } from '../../src/engine/engine.js';
import { DAY, HOUR, accountTakeover, travellingFreelancer } from '../../src/scenarios/reference.js';
import { isolatedConfig } from '../support/config.js';
import { Harness } from '../support/pipeline.js';

describe('reference scenarios through the live pipeline', () => {
  let h: Harness;
  const runId = Date.now().toString(36);
  const a = travellingFreelancer(Date.now() - 11 * DAY, runId);
  const b = accountTakeover(Date.now() - 2 * HOUR, runId);

  beforeAll(async () => {
    h = await new Harness(isolatedConfig('scenarios')).start();
    await h.publishPhases([
      [...a.phases[0]!, ...b.phases[0]!],
      [...a.phases[1]!, ...b.phases[1]!],
    ]);
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('A. the travelling freelancer: no flag, weak signals seen, mitigations apply, score under the threshold', async () => {
    const flags = (await h.flags()).filter((f) => f.accountId === a.accountId);
    expect(flags).toEqual([]);
    const stored = await h.proc.storedAccount(a.accountId);
    const [decision, ...others] = scoreAccount(stored, stored.watermark, h.proc.activePolicy);
    expect(others).toEqual([]);
    expect(decision!.queue).toBe('account_security');
    const seen = decision!.signals.map((s) => s.observation.signalId);
    expect(seen).toContain('ip.anonymizer_share');
    expect(decision!.signals.every((s) => s.weak)).toBe(true);
    expect(decision!.mitigations.map((m) => m.id)).toEqual(
      expect.arrayContaining(['tenure', 'verified_identity', 'long_running_contract']),
    );
    expect(decision!.score).toBeLessThan(decision!.threshold);
    expect(decision!.severity).toBeUndefined();
    expect(decision!.corroboration).toMatch(/only weak signals/);
  });

  it('B. account takeover: exactly one flag, review, account security, high, with its signals and evidence', async () => {
    const flags = (await h.flags()).filter((f) => f.accountId === b.accountId);
    expect(flags).toHaveLength(1);
    const f = flags[0]!;
    expect(f.action).toBe('REVIEW');
    expect(f.reviewQueue).toBe('account_security');
    expect(f.severity).toBe('high');
    expect(f.score).toBeGreaterThanOrEqual(f.reviewThreshold);
    const ids = f.signals.map((s) => s.id);
    for (const expected of [
      'login.failed_burst',
      'login.impossible_travel',
      'login.new_device',
      'login.new_country',
      'payment.added_after_risky_login',
    ]) {
      expect(ids).toContain(expected);
    }
    const events = b.phases.flat().map((e) => e.event);
    const byId = new Map(events.map((e) => [e.eventId, e]));
    for (const s of f.signals) {
      expect(s.observed, s.id).toBeGreaterThanOrEqual(s.threshold);
      expect(s.window, s.id).not.toBe('');
      expect(s.evidenceEventIds.length, s.id).toBeGreaterThan(0);
      for (const e of s.evidenceEventIds)
        expect(byId.has(e), `${s.id} evidence ${e} is a real event`).toBe(true);
    }
    const failed = f.signals.find((s) => s.id === 'login.failed_burst')!;
    expect(
      failed.evidenceEventIds.every((e) => (byId.get(e) as { outcome?: string }).outcome === 'FAILURE'),
    ).toBe(true);
    const travel = f.signals.find((s) => s.id === 'login.impossible_travel')!;
    expect(travel.summary).toMatch(/Milton, US to Changchun, CN/);
    expect(f.mitigations.map((m) => m.id).sort()).toEqual(['tenure', 'verified_identity']);
    // the member sees the category and how to resolve it, nothing of the detection
    expect(f.notice.category).toBe('Account security');
    const notice = `${f.notice.text} ${f.notice.howToResolve}`;
    expect(notice).not.toMatch(/\d/);
    for (const s of f.signals) expect(notice).not.toContain(s.id);
  });

  it('B. replaying every event again changes no feature and emits no second flag', async () => {
    const before = await h.dumpKeys();
    const flagsBefore = (await h.flags()).length;
    await h.publishPhases(b.phases);
    expect(await h.dumpKeys()).toEqual(before);
    expect((await h.flags()).length).toBe(flagsBefore);
  });
});
