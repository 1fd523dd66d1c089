import { z } from 'zod';
import { duration, formatDuration, signalBase } from '../../config/params.js';
import { defineSignal } from '../../src/domain/signal.js';
import { novelty } from './novelty.js';

export const newCountry = defineSignal({
  id: 'login.new_country',
  family: 'login',
  weak: true,
  description:
    "Successful login from a country unseen in the account's history window (skipped on anonymizers).",
  params: z.strictObject({ ...signalBase, window: duration().default(90 * 86_400_000) }),
  triggeredBy: (e) => e.family === 'login' && e.event.outcome === 'SUCCESS',
  needs: (p) => ({ account: [{ q: 'distinct', kind: 'country', from: -p.window, maxValues: 10 }] }),
  evaluate({ event, subject }, p) {
    const geo = event.geo;
    if (!geo || geo.anonymizer || geo.hosting) {
      return { status: 'skipped', reason: skipReason(geo) };
    }
    if (!geo.country) return { status: 'skipped', reason: `no country known for ${geo.ip}` };
    const countries = subject.distinct('country', p.window, 10);
    const n = novelty(subject, 'country', countries.n, p.window);
    if (n.kind === 'unknown') return { status: 'skipped', reason: n.reason };
    const others = countries.values.filter((c) => c !== geo.country);
    const m = {
      observed: n.kind === 'new' ? 1 : 0,
      threshold: 1,
      window: formatDuration(p.window),
      summary:
        n.kind === 'new'
          ? `first login from ${place(geo)} in ${formatDuration(p.window)}; seen before: ${others.join(', ')}`
          : `${place(geo)} already seen in ${formatDuration(p.window)}`,
    };
    return n.kind === 'new'
      ? { status: 'fired', evidenceEventIds: [event.event.eventId], ...m }
      : { status: 'below', ...m };
  },
});

function place(geo: { country?: string; city?: string }): string {
  return geo.city ? `${geo.country} (${geo.city})` : (geo.country ?? 'unknown');
}

/**
 * Why a login's location is not judged, naming every type the databases list for its IP (a stored
 * login keeps only whether it was an anonymizer or hosting).
 */
export function skipReason(
  geo: { ip: string; anonymizerKinds: string[]; hosting: boolean; anonymizer?: boolean } | null,
): string {
  if (!geo) return 'no location known for this IP';
  const kinds = [
    ...geo.anonymizerKinds,
    ...(geo.anonymizer && !geo.anonymizerKinds.length ? ['an anonymizer'] : []),
    ...(geo.hosting && !geo.anonymizerKinds.includes('hosting') ? ['hosting'] : []),
  ];
  const listed = kinds.length ? kinds.join(', ') : 'an anonymizer or hosting provider';
  return `IP ${geo.ip} is listed as ${listed}: its location says nothing about the person, so it is not judged`;
}
