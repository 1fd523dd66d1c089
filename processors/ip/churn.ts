import { z } from 'zod';
import { duration, formatDuration, positiveInt, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';

export const churn = defineSignal({
  id: 'ip.churn',
  family: 'ip',
  weak: true,
  description: 'Distinct IPs, network prefixes or ASNs in a window.',
  params: z.strictObject({
    ...signalBase,
    /** Distinct IP addresses. */
    threshold: positiveInt().default(10),
    prefixThreshold: positiveInt().default(6),
    asnThreshold: positiveInt().default(4),
    window: duration().default(86_400_000),
  }),
  // judged at each successful login, like anonymizer_share; IP observations feed the sets
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS',

  needs: (p) => ({
    account: [
      { q: 'distinct', kind: 'personalIp', from: -p.window, maxValues: 0 },
      { q: 'distinct', kind: 'anonymizerIp', from: -p.window, maxValues: 0 },
      { q: 'distinct', kind: 'prefix', from: -p.window, maxValues: 0 },
      { q: 'distinct', kind: 'asn', from: -p.window, maxValues: 0 },
    ],
  }),
  evaluate({ event, subject }, p) {
    const ips =
      subject.distinct('personalIp', p.window, 0).n + subject.distinct('anonymizerIp', p.window, 0).n;
    const prefixes = subject.distinct('prefix', p.window, 0).n;
    const asns = subject.distinct('asn', p.window, 0).n;
    // the measure furthest past its own threshold speaks for the signal (the first of equals)
    const top = [
      { name: 'IPs', observed: ips, threshold: p.threshold },
      { name: 'prefixes', observed: prefixes, threshold: p.prefixThreshold },
      { name: 'ASNs', observed: asns, threshold: p.asnThreshold },
    ].reduce((best, m) => (m.observed / m.threshold > best.observed / best.threshold ? m : best));
    const m = {
      observed: top.observed,
      threshold: top.threshold,
      window: formatDuration(p.window),
      summary: `${ips} IPs, ${prefixes} prefixes, ${asns} ASNs in ${formatDuration(p.window)} (${top.name} furthest over)`,
    };
    return top.observed >= top.threshold
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});
