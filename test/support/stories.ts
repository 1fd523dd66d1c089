// Stories of issue 18 as events, for the in-memory tests and the same stories through Kafka.
import type { ActivityEvent } from '../../src/domain/events.js';
import type { EnrichedEvent } from '../../src/domain/events.js';
import type { GeoIp } from '../../src/enrich/geoip.js';
import { ingest } from '../../src/ingest/ingest.js';
import { DAY, MINUTE, login } from '../../src/scenarios/reference.js';
import { shippedConfig } from './snapshot.js';

export const MILTON = '216.160.83.56';
export const CHANGCHUN = '175.16.199.1';

const idsFor = (prefix: string) => {
  let n = 0;
  return { next: () => `${prefix}-${String(++n).padStart(3, '0')}` };
};

/**
 * One account open in Milton and in Changchun at once (8,600 km apart, neither an anonymizer) on
 * `days` different days: each morning a session from Milton, and half an hour later one from
 * Changchun while the first is still open.
 */
export function accountSharing(accountId: string, t0: number, days: number): ActivityEvent[] {
  const ids = idsFor(`share-${accountId}`);
  return Array.from({ length: days }, (_, d) => {
    const at = t0 + d * DAY;
    return [
      login(ids, accountId, at, MILTON, { deviceId: 'dev-laptop', sessionId: `${accountId}-m-${d}` }),
      login(ids, accountId, at + 30 * MINUTE, CHANGCHUN, {
        deviceId: 'dev-other',
        sessionId: `${accountId}-c-${d}`,
      }),
    ];
  }).flat();
}

/** Events as the pipeline sees them after validation and MaxMind enrichment. */
export function enriched(events: ActivityEvent[], geo: GeoIp, now: number): EnrichedEvent[] {
  const { config } = shippedConfig();
  return events.map((e) => {
    const r = ingest(e.family, e.event, config.validation, geo, now);
    if (!r.ok) throw new Error(`${e.event.eventId}: ${r.detail}`);
    return r.event;
  });
}
