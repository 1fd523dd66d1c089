import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unreachableSignals } from '../../src/domain/reachability.js';
import { decide, type SignalSettings } from '../../src/domain/scoring.js';
import type { AccountMitigation } from '../../src/domain/mitigations.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { DEFAULT_CONFIG_FILE } from '../../src/runtime/config-loader.js';
import { observation, shippedPolicy } from '../support/snapshot.js';

const policy = shippedPolicy();
const cfg = policy.config;

/** The shipped config with some signal blocks changed, as an environment file would. */
function loadedWith(signals: Record<string, Record<string, Record<string, unknown>>>) {
  const env = Object.fromEntries(
    Object.entries(signals).flatMap(([family, byName]) =>
      Object.entries(byName).flatMap(([name, fields]) =>
        Object.entries(fields).map(([k, v]) => [`FAIRFLAG__signals__${family}__${name}__${k}`, String(v)]),
      ),
    ),
  );
  return loadConfig({ baseFile: DEFAULT_CONFIG_FILE, env });
}

describe('signals that can never reach review', () => {
  it('the shipped config has none', () => {
    expect(unreachableSignals(policy.settings, cfg)).toEqual([]);
    expect(loadConfig({ env: {} }).warnings).toEqual([]);
  });

  it('reports a signal alone in its queue that is not sufficient alone, with the reason', () => {
    // account sharing as it was: the only identity signal left, and not sufficient alone
    const loaded = loadedWith({
      login: { concurrent_distant_sessions: { sufficientAlone: false } },
      ip: { shared_by_accounts: { enabled: false } },
      payment: { shared_instrument: { enabled: false } },
    });
    expect(loaded.warnings).toEqual([
      'signals.login.concurrent_distant_sessions: can never reach review: alone in queue identity, nothing can corroborate it: 1 family (login); 2 needed or a signal sufficient alone',
    ]);
  });

  it('reports every signal of a queue whose other signals are of the same family', () => {
    // impossible travel and failed bursts alone in account security: one family, none sufficient
    const loaded = loadedWith({
      login: { new_country: { enabled: false }, new_device: { enabled: false } },
      ip: { anonymizer_share: { enabled: false }, churn: { enabled: false } },
      payment: { added_after_risky_login: { enabled: false } },
    });
    expect(loaded.warnings.map((w) => w.split(':')[0])).toEqual([
      'signals.login.failed_burst',
      'signals.login.impossible_travel',
    ]);
    expect(loaded.warnings[0]).toMatch(
      /queue account_security \(login\.failed_burst, login\.impossible_travel\)/,
    );
  });

  it('reports a queue of weak signals only, and one whose best score is below the threshold', () => {
    const weak = loadedWith({
      login: {
        failed_burst: { enabled: false },
        impossible_travel: { enabled: false },
      },
      payment: { added_after_risky_login: { enabled: false } },
    });
    expect(weak.warnings).toHaveLength(4);
    for (const w of weak.warnings) expect(w).toMatch(/only weak signals: never enough on their own/);

    const low = loadedWith({
      payment: {
        failed_verifications: { weight: 0.5, maxStrength: 2 },
        method_velocity: { enabled: false },
      },
    });
    expect(low.warnings).toEqual([
      'signals.payment.failed_verifications: can never reach review: alone in queue payments: at most 1 with every signal at its maxStrength, below the review threshold 2',
    ]);
  });

  it('is exact: a signal it reports is never part of a review, whatever fires, however strong, with any mitigations', () => {
    const ids = [...policy.settings.keys()];
    const queues = ['account_security', 'identity', 'payments', 'contracts'];
    const tunedSettings = fc
      .array(
        fc.record({
          queue: fc.constantFrom(...queues),
          weight: fc.double({ min: 0.1, max: 3, noNaN: true }),
          sufficientAlone: fc.boolean(),
          maxStrength: fc.double({ min: 1, max: 3, noNaN: true }),
          enabled: fc.boolean(),
        }),
        { minLength: ids.length, maxLength: ids.length },
      )
      .map((tunings) => {
        const m = new Map<string, SignalSettings>();
        ids.forEach((id, i) => {
          const s = policy.settings.get(id)!;
          const t = tunings[i]!;
          if (!t.enabled) return;
          m.set(id, {
            ...s,
            ...t,
            sufficientAlone: t.sufficientAlone && !s.definition.weak,
          });
        });
        return m;
      });
    let reviews = 0;
    fc.assert(
      fc.property(
        tunedSettings,
        fc.subarray(ids),
        fc.array(fc.double({ min: 0, max: 10, noNaN: true }), {
          minLength: ids.length,
          maxLength: ids.length,
        }),
        fc.subarray([0.8, 0.8, 0.6]),
        (settings, fired, strengths, factors) => {
          const holes = new Set(unreachableSignals(settings, cfg).map((u) => u.signalId));
          const mitigations: AccountMitigation[] = factors.map((factor, i) => ({
            id: `m${i}`,
            factor,
            effect: '',
            fact: '',
            appliesTo: queues,
          }));
          const observations = fired.map((id) =>
            observation(id, { observed: strengths[ids.indexOf(id)]!, threshold: 1 }),
          );
          for (const d of decide(observations, settings, mitigations, new Map(), 0, cfg)) {
            if (!d.severity) continue;
            reviews++;
            for (const s of d.signals) expect(holes.has(s.observation.signalId)).toBe(false);
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(reviews).toBeGreaterThan(20);
  });
});
