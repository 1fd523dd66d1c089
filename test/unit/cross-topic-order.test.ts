// Families are consumed independently: a takeover whose logins and new cards arrive on two topics
// at the same moment (a backlog after an outage, a replay) must still be flagged, whichever batch
// is processed first, and when both are in flight at once.
import { describe, expect, it } from 'vitest';
import type { EnrichedEvent } from '../../src/domain/events.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { ingest } from '../../src/ingest/ingest.js';
import { HOUR, accountTakeover } from '../../src/scenarios/reference.js';
import { MemoryPipeline } from '../support/engine.js';
import { shippedConfig } from '../support/snapshot.js';

describe('a pattern spanning two topics', () => {
  for (const first of ['logins', 'payments', 'together'] as const) {
    it(`is flagged once when the ${first === 'together' ? 'two batches run at once' : `${first} batch runs first`}`, async () => {
      const { config } = shippedConfig();
      const geo = await GeoIp.open(config.maxmind);
      const s = accountTakeover(Date.now() - 2 * HOUR, `order-${first}`);
      const enrich = (events: (typeof s.phases)[0]) =>
        events.map((e) => {
          const r = ingest(e.family, e.event, config.validation, geo);
          if (!r.ok) throw new Error(r.detail);
          return r.event;
        });
      const p = new MemoryPipeline();
      await p.batch(enrich(s.phases[0]!));
      const logins: EnrichedEvent[] = enrich(s.phases[1]!.filter((e) => e.family === 'login'));
      const payments: EnrichedEvent[] = enrich(s.phases[1]!.filter((e) => e.family === 'payment'));
      if (first === 'together') await Promise.all([p.batch(logins), p.batch(payments)]);
      else for (const b of first === 'logins' ? [logins, payments] : [payments, logins]) await p.batch(b);
      expect(p.flags).toHaveLength(1);
      const flag = p.flags[0]!;
      expect(flag.severity).toBe('high');
      expect(flag.signals.map((x) => x.id)).toContain('payment.added_after_risky_login');
    });
  }
});
