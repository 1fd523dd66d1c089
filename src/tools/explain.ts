// Explain one account to an analyst: current feature values by window, every signal against its
// threshold (fired, below, or skipped and why), the mitigations, the score, the open flags.
import { planLogin } from '../../processors/login/index.js';
import { formatDuration } from '../../config/params.js';
import type { EnrichedEvent } from '../domain/events.js';
import { accountMitigations, historyUnknown, type AccountMitigation } from '../domain/mitigations.js';
import type { QueueDecision } from '../domain/scoring.js';
import type { Evaluation } from '../domain/signal.js';
import type { GeoIp } from '../enrich/geoip.js';
import { queriesFor, scoreAccount, snapshotOf } from '../engine/engine.js';
import type { Policy } from '../engine/policy.js';
import type { AccountFeatures } from '../features/account-features.js';
import { readStoredAccount } from '../features/owned-accounts.js';
import type { StateBackend } from '../features/state-backend.js';
import {
  type AccountContext,
  type AccountQuery,
  type ContractRecord,
  type CountResult,
  type DistinctResult,
  type FlagState,
  type SessionRecord,
} from '../features/model.js';
import { AccountView, noveltyIndex } from '../features/view.js';

export interface FeatureValue {
  feature: string;
  window: string;
  value: number;
  sample?: string[];
}

export interface SignalExplanation {
  id: string;
  family: string;
  weak: boolean;
  /** 'no observation': not judged again here, and nothing it observed is remembered. */
  status: 'fired' | 'below' | 'skipped' | 'no observation' | 'error';
  /** Where the status comes from: a remembered observation, or the latest login judged again. */
  basis: string;
  observed?: number;
  threshold?: number;
  window?: string;
  summary: string;
  evidenceEventIds?: string[];
  observedAt?: number;
}

export interface Explanation {
  accountId: string;
  known: boolean;
  asOf: number;
  context: AccountContext;
  /** No creation event seen: the account's history is unknown to fairflag, not absent. */
  historyUnknown: boolean;
  mitigations: AccountMitigation[];
  features: FeatureValue[];
  signals: SignalExplanation[];
  decisions: QueueDecision[];
  openFlags: FlagState[];
  clearedPatterns: { pattern: string; until: number }[];
  capsReached: { what: string; at: number }[];
}

const EVENT_LABELS: Record<string, string> = {
  loginFailed: 'failed logins',
  session: 'sessions',
  anonymizedSession: 'sessions via anonymizer or hosting',
  methodAdded: 'payment methods added',
  verificationFailed: 'failed payment verifications',
  milestonePaid: 'milestone payments received',
  dispute: 'disputes and refunds against the freelancer',
  nonDeliveryDispute: 'non-delivery disputes',
  sharingEpisode: 'account-sharing episodes (far-apart sessions open at once)',
};
const VALUE_LABELS: Record<string, string> = {
  country: 'countries (personal IPs)',
  device: 'devices',
  personalIp: 'personal IPs',
  anonymizerIp: 'shared-by-nature IPs (anonymizer, hosting, carrier NAT)',
  prefix: 'network prefixes',
  asn: 'networks (ASNs)',
  instrument: 'payment instruments',
};

/**
 * Explains an account as stored in Redis: the state as of the last batch its owner wrote (an
 * instance writes each batch's changes before committing it). Read-only.
 */
export async function explainStored(
  accountId: string,
  backend: StateBackend,
  policy: Policy,
  geo: GeoIp,
): Promise<Explanation> {
  return explainAccount(await readStoredAccount(backend, accountId, policy.layout), policy, geo);
}

export function explainAccount(f: AccountFeatures, policy: Policy, geo: GeoIp): Explanation {
  const accountId = f.accountId;
  const known = f.watermark > 0;
  // windows measured from the account's latest event
  const asOf = known ? f.watermark : Date.now();
  // every windowed question any enabled signal asks
  const queries: AccountQuery[] = queriesFor(policy.signals).filter((q) => !(q.q === 'count' && q.to > 0));
  if (!queries.some((q) => q.q === 'contracts')) queries.push({ q: 'contracts' });
  const features: FeatureValue[] = [];
  for (const q of queries) {
    const r = f.answer(q, asOf);
    if (q.q === 'count') {
      const c = r as CountResult;
      features.push({ feature: EVENT_LABELS[q.kind] ?? q.kind, window: formatDuration(-q.from), value: c.n });
    } else if (q.q === 'distinct') {
      const d = r as DistinctResult;
      features.push({
        feature: VALUE_LABELS[q.kind] ?? q.kind,
        window: formatDuration(-q.from),
        value: d.n,
        sample: d.values.slice(0, 10),
      });
    } else if (q.q === 'sessions') {
      const s = r as SessionRecord[];
      features.push({
        feature: 'open sessions',
        window: formatDuration(-q.from),
        value: s.length,
        sample: s.map((x) => x.sessionId),
      });
    } else {
      const k = r as ContractRecord[];
      features.push({
        feature: 'contracts remembered',
        window: formatDuration(policy.layout.valueRetentionMs),
        value: k.length,
      });
    }
  }
  features.sort((a, b) => a.feature.localeCompare(b.feature) || a.window.localeCompare(b.window));

  // the latest login judged again, as of its own time, for the signals a login triggers
  const judged = new Map<string, Evaluation | { status: 'error'; reason: string }>();
  const last = f.lastLogin;
  if (last) {
    const event: EnrichedEvent = {
      family: 'login',
      event: {
        eventId: last.eventId,
        accountId,
        occurredAt: last.at,
        outcome: 'SUCCESS',
        ip: last.ip,
        deviceId: last.deviceId ?? null,
        sessionId: null,
      },
      geo: geo.lookup(last.ip),
    };
    // signals that look across accounts (a shared IP) are judged in the pipeline, not here
    const triggered = policy.signals.filter(
      (s) => s.definition.triggeredBy(event, 'account') && !s.definition.needs(s.params).entity,
    );

    const ops = planLogin(event as Extract<EnrichedEvent, { family: 'login' }>).subjects[0]!.ops.filter(
      (o) => o.op === 'value',
    );
    const view = new AccountView(
      snapshotOf(f, last.at, { late: false, lastSeenBefore: f.lastSeen(ops) }, policy.layout),
      noveltyIndex(ops),
    );
    for (const { definition, params } of triggered) {
      try {
        judged.set(
          definition.id,
          definition.evaluate({ event, role: 'account', subject: view, entities: {} }, params),
        );
      } catch (err) {
        judged.set(definition.id, { status: 'error', reason: (err as Error).message });
      }
    }
  }

  const remembered = new Map(f.observations);
  for (const flag of f.openFlags.values())
    for (const o of flag.signals) if (!remembered.has(o.signalId)) remembered.set(o.signalId, o);
  const signals: SignalExplanation[] = policy.signals.map(({ definition }) => {
    const base = { id: definition.id, family: definition.family, weak: definition.weak };
    const o = remembered.get(definition.id);
    if (o) {
      return {
        ...base,
        status: 'fired' as const,
        basis: `observed at ${new Date(o.observedAt).toISOString()} (event ${o.eventId})`,
        observed: o.observed,
        threshold: o.threshold,
        window: o.window,
        summary: o.summary,
        evidenceEventIds: o.evidenceEventIds,
        observedAt: o.observedAt,
      };
    }
    const j = judged.get(definition.id);
    if (j && last) {
      const basis = `latest login ${last.eventId} at ${new Date(last.at).toISOString()}, judged again`;
      if (j.status === 'skipped' || j.status === 'error')
        return { ...base, status: j.status, basis, summary: j.reason };
      return {
        ...base,
        status: j.status,
        basis,
        observed: j.observed,
        threshold: j.threshold,
        window: j.window,
        summary: j.summary,
        ...(j.status === 'fired' && { evidenceEventIds: j.evidenceEventIds }),
      };
    }
    return {
      ...base,
      status: 'no observation' as const,
      basis: `no observation in the last ${formatDuration(policy.config.features.correlationWindow)}`,
      // only the latest login is judged again here: say what the absence of an observation means
      summary:
        "no observation remembered: on the account's events in that time it did not fire or was skipped (see the feature values)",
    };
  });

  return {
    accountId,
    known,
    asOf,
    context: f.context,
    historyUnknown: historyUnknown(f.context),
    mitigations: accountMitigations(
      { asOf, context: f.context, contracts: f.contractList() },
      policy.config.mitigations,
    ),
    features,
    signals,
    decisions: scoreAccount(f, asOf, policy),
    openFlags: [...f.openFlags.values()],
    clearedPatterns: [...f.clearedPatterns].map(([pattern, until]) => ({ pattern, until })),
    capsReached: [...f.capsReached].map(([what, at]) => ({ what, at })),
  };
}
