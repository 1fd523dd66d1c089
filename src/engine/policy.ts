// The effective policy compiled from a validated config: which signals run with which params,
// and the feature-store layout their windows imply. Swapped whole on reload, between batches.
import { SIGNALS } from '../../processors/registry.js';
import type { Config } from '../../config/schema.js';
import type { SignalBaseParams } from '../../config/params.js';
import type { AnySignal } from '../domain/signal.js';
import type { SignalSettings } from '../domain/scoring.js';
import { EVENT_KINDS, type EntityType, type EventKind, type FeatureLayout } from '../features/model.js';
import type { LoadedConfig } from '../runtime/config-loader.js';
import { PROCESSOR_VERSION } from '../runtime/project.js';

export interface ActiveSignal {
  definition: AnySignal;
  params: SignalBaseParams & Record<string, unknown>;
}

export interface Policy {
  config: Config;
  version: string;
  processorVersion: string;
  signals: ActiveSignal[];
  settings: Map<string, SignalSettings>;
  layout: FeatureLayout;
  /** How long Redis keeps an account's features after their last write: the longest retention. */
  accountTtlMs: number;
  /** Shared entities some enabled signal reads: only these are kept (an unread set costs writes). */
  entityTypes: ReadonlySet<EntityType>;
}

export function paramsOf(config: Config, signal: AnySignal): ActiveSignal['params'] {
  const family = (config.signals as Record<string, Record<string, ActiveSignal['params']>>)[signal.family];
  const params = family?.[signal.id.slice(signal.family.length + 1)];
  if (!params) throw new Error(`no config block for ${signal.id}`);
  return params;
}

/** The enabled signals with their params. */
export function enabledSignals(config: Config): ActiveSignal[] {
  return SIGNALS.map((definition) => ({ definition, params: paramsOf(config, definition) })).filter(
    (s) => s.params.enabled,
  );
}

/** What scoring needs to know of each enabled signal. */
export function signalSettings(signals: readonly ActiveSignal[]): Map<string, SignalSettings> {
  return new Map<string, SignalSettings>(
    signals.map(({ definition, params }) => [
      definition.id,
      {
        definition,
        weight: params.weight,
        queue: params.queue,
        strong: params.strong,
        sufficientAlone: params.sufficientAlone,
        maxStrength: params.maxStrength,
      },
    ]),
  );
}

export function compilePolicy(loaded: LoadedConfig): Policy {
  const { config } = loaded;
  const signals = enabledSignals(config);
  const settings = signalSettings(signals);
  const layout = layoutFor(config, signals);
  return {
    config,
    version: loaded.version,
    processorVersion: PROCESSOR_VERSION,
    signals,
    settings,
    layout,
    entityTypes: new Set(
      signals.flatMap(({ definition, params }) => definition.needs(params).entity?.type ?? []),
    ),
    accountTtlMs: Math.max(
      layout.valueRetentionMs,
      layout.sessionRetentionMs,
      ...Object.values(layout.eventRetentionMs),
    ),
  };
}

/** Keep each kind of data exactly as long as the longest window that reads it, plus lateness. */
function layoutFor(config: Config, signals: ActiveSignal[]): FeatureLayout {
  const late = config.features.allowedLateness;
  const events = Object.fromEntries(Object.keys(EVENT_KINDS).map((k) => [k, late])) as Record<
    EventKind,
    number
  >;
  let values = config.features.history;
  let sessions = late;
  const entities: Record<EntityType, number> = {
    ip: late,
    device: config.features.deviceWindow,
    instrument: late,
  };
  for (const { definition, params } of signals) {
    const needs = definition.needs(params);
    for (const q of needs.account) {
      if (q.q === 'count') events[q.kind] = Math.max(events[q.kind], Math.max(-q.from, q.to) + late);
      if (q.q === 'distinct') values = Math.max(values, -q.from);
      if (q.q === 'sessions') sessions = Math.max(sessions, -q.from + late);
    }
    if (needs.entity)
      entities[needs.entity.type] = Math.max(entities[needs.entity.type], needs.entity.windowMs + late);
  }
  return {
    keyPrefix: config.redis.keyPrefix,
    allowedLatenessMs: late,
    eventRetentionMs: events,
    valueRetentionMs: values + late,
    sessionRetentionMs: sessions,
    entityRetentionMs: entities,
    caps: config.features.caps,
  };
}
