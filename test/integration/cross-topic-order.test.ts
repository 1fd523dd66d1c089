// Families are consumed independently: a takeover whose logins and new cards arrive on two topics
// at the same moment (a backlog after an outage, a replay) must still be flagged, whichever
// batch reaches Redis first.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import type { EnrichedEvent } from '../../src/domain/events.js';
import { GeoIp } from '../../src/enrich/geoip.js';
import { Engine } from '../../src/engine/engine.js';
import { compilePolicy } from '../../src/engine/policy.js';
import { FeatureStore } from '../../src/features/store.js';
import { ingest } from '../../src/ingest/ingest.js';
import { loadConfig } from '../../src/runtime/config-loader.js';
import { HOUR, accountTakeover } from '../../src/scenarios/reference.js';
import { endpoints } from '../support/endpoints.js';

describe('a pattern spanning two topics', () => {
  const redis = new Redis(endpoints().redisUrl);
  afterAll(() => redis.disconnect());

  for (const first of ['logins', 'payments', 'together'] as const) {
    it(`is flagged when the ${first === 'together' ? 'two batches run at once' : `${first} batch runs first`}`, async () => {
      const loaded = loadConfig({
        env: { ...process.env, FAIRFLAG_REDIS_KEY_PREFIX: `t-order-${first}-${Date.now()}` },
      });
      const policy = compilePolicy(loaded);
      const store = new FeatureStore(redis, policy.layout);
      const engine = new Engine(store, () => policy);
      const geo = await GeoIp.open(loaded.config.maxmind);
      const s = accountTakeover(Date.now() - 2 * HOUR, `order-${first}`);
      const enrich = (events: (typeof s.phases)[0]) =>
        events.map((e) => {
          const r = ingest(e.family, e.event, loaded.config.validation, geo);
          if (!r.ok) throw new Error(r.detail);
          return r.event;
        });
      const history = await engine.process(enrich(s.phases[0]!));
      await engine.commit(history);
      const logins: EnrichedEvent[] = enrich(s.phases[1]!.filter((e) => e.family === 'login'));
      const payments: EnrichedEvent[] = enrich(s.phases[1]!.filter((e) => e.family === 'payment'));
      const results =
        first === 'together'
          ? await Promise.all([engine.process(logins), engine.process(payments)])
          : first === 'logins'
            ? [await engine.process(logins), await engine.process(payments)]
            : [await engine.process(payments), await engine.process(logins)];
      const emissions = results.flatMap((r) => r.emissions);
      expect(emissions).toHaveLength(1);
      const flag = emissions[0]!.flag;
      expect(flag.severity).toBe('high');
      expect(flag.signals.map((x) => x.id)).toContain('payment.added_after_risky_login');
    });
  }
});
