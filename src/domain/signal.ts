// What a signal is: a pure function from the event and a feature snapshot to an observation.
// No Kafka, no Redis: signals are tested in memory and run unchanged in the pipeline and in replay.
import type { z } from 'zod';
import type { SignalBaseParams } from '../../config/params.js';
import type {
  AccountMemory,
  AccountQuery,
  EntitySnapshot,
  EntityType,
  EventKind,
} from '../features/model.js';

import type { AccountView } from '../features/view.js';
import type { EnrichedEvent } from './events.js';

export const SIGNAL_FAMILIES = ['login', 'ip', 'payment', 'contract'] as const;
export type SignalFamily = (typeof SIGNAL_FAMILIES)[number];

/** Whose features a signal is evaluated for: contract events have two sides. */
export type SubjectRole = 'account' | 'client' | 'freelancer';

export interface SignalNeeds {
  /** Questions about the subject account. */
  account: AccountQuery[];
  /** Distinct accounts on a shared entity named by the event (its IP, device or instrument). */
  entity?: { type: EntityType; windowMs: number };
  /** What else of the account's memory the signal reads (only these are sent back). */
  reads?: AccountMemory[];
}

export interface SignalContext {
  event: EnrichedEvent;
  role: SubjectRole;
  subject: AccountView;
  /** The other side of a contract. */
  counterpart?: AccountView;
  entities: Partial<Record<EntityType, EntitySnapshot>>;
}

interface Measured {
  observed: number;
  threshold: number;
  /** Human-readable window, e.g. 15m or "consecutive logins". */
  window: string;
  /** What was observed, in an analyst's words; never shown to members. */
  summary: string;
}
/**
 * The event is itself one occurrence of a pattern the signal counts over time (an account-sharing
 * episode): the engine records it under this kind, so later evaluations can count it. Signals stay
 * pure; the engine does the write.
 */
interface Recorded {
  recordAs?: EventKind;
}
export type Evaluation =
  | ({ status: 'fired'; evidenceEventIds: string[] } & Measured & Recorded)
  | ({ status: 'below' } & Measured & Recorded)
  /** Not applicable to this event, or deliberately not judged (e.g. an anonymizer's location). */
  | { status: 'skipped'; reason: string };

export interface SignalDefinition<P extends SignalBaseParams = SignalBaseParams> {
  id: string;
  family: SignalFamily;
  /** VPN use, IP churn, a new country, a new device: never raise a flag on their own. */
  weak: boolean;
  /** One line for analysts: what it observes. */
  description: string;
  /** The signal's config block (signals.<family>.<name>), including the base fields. */
  params: z.ZodType<P>;
  triggeredBy(event: EnrichedEvent, role: SubjectRole): boolean;
  /**
   * Compares both sides of a contract (the counterpart view): judged where both are known, at the
   * owner of the side that did not act (see src/engine/counterparts.ts), for both sides.
   */
  pairwise?: boolean;

  needs(params: P): SignalNeeds;
  evaluate(ctx: SignalContext, params: P): Evaluation;
}

/** Keeps each signal file's params type while the registry holds them together. */
export function defineSignal<P extends SignalBaseParams>(def: SignalDefinition<P>): SignalDefinition<P> {
  return def;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each signal has its own params type
export type AnySignal = SignalDefinition<any>;
