// decode -> enrich -> [here] update features -> read snapshot -> signals -> score -> flag.
// Shared by the live pipeline and replay, so an analyst's replay runs exactly production's code.
import { planEvent } from '../../processors/registry.js';
import type { EventPlan, SubjectPlan } from '../../processors/plan.js';
import type { EnrichedEvent, ReviewOutcome } from '../domain/events.js';
import { updateFlag, type ReviewFlag } from '../domain/flags.js';
import { accountMitigations, reviewPattern } from '../domain/mitigations.js';
import { decide, type QueueDecision } from '../domain/scoring.js';
import type { Evaluation, SignalContext } from '../domain/signal.js';
import {
  queryKey,
  type AccountMemory,
  type AccountQuery,
  type AccountSnapshot,
  type ContractRecord,
  type EntitySnapshot,
  type EntityType,
  type FlagState,
  type StoredObservation,
} from '../features/model.js';
import { noveltyIndex, type FeatureStore } from '../features/store.js';
import { AccountView, mergeObservations } from '../features/view.js';
import type { ActiveSignal, Policy } from './policy.js';

export interface SignalEvaluation {
  signalId: string;
  accountId: string;
  evaluation: Evaluation | { status: 'error'; reason: string };
}

export interface EventOutcome {
  event: EnrichedEvent;
  /** Older than the allowed lateness for a subject: its windowed features ignored it. */
  lateFor: string[];
  evaluations: SignalEvaluation[];
}

export interface FlagEmission {
  flag: ReviewFlag;
  /** Absent when an unconfirmed claim is sent again: its decision was made by an earlier run. */
  decision?: QueueDecision;
}

/** What a claimed flag revision remembers until it is confirmed on the topic. */
interface PendingFlag {
  flag: ReviewFlag;
  /** Wall-clock time of the claim: past STALE_CLAIM_MS its owner is presumed gone. */
  claimedAt: number;
}
const STALE_CLAIM_MS = 60_000;

export interface BatchResult {
  outcomes: EventOutcome[];
  /** In emission order; produce them before commit(). */
  emissions: FlagEmission[];
  /** Open-flag states to write once the flags are on the topic (a crash in between re-emits, never loses). */
  stateWrites: { accountId: string; at: number; queue: string; state: FlagState }[];
  policyVersion: string;
}

interface SubjectRun {
  plan: SubjectPlan;
  signals: ActiveSignal[];
  snapshot: AccountSnapshot;
}

const CONTRACTS: AccountQuery = { q: 'contracts' };

/** The store questions, memory and entity windows of one set of triggered signals. */
interface SignalSetNeeds {
  queries: AccountQuery[];
  memory: AccountMemory[];
  entityWindows: [EntityType, number][];
}

export class Engine {
  /**
   * Redis round trips the events waited for: one per event for its feature update (its account
   * and entity calls go out together), one per remember-and-score, claim and confirm.
   */
  roundTrips = 0;
  /** By policy (a reload makes a new one), then by the indices of the triggered signals. */
  private readonly needsCache = new WeakMap<Policy, Map<string, SignalSetNeeds>>();

  constructor(
    private readonly store: FeatureStore,
    private readonly currentPolicy: () => Policy,
    private readonly onSignalError: (signalId: string, err: unknown) => void = () => {},
  ) {}

  async process(events: EnrichedEvent[]): Promise<BatchResult> {
    const policy = this.currentPolicy();
    // Round trip 1: every event's feature changes and questions, pipelined in event order, so the
    // store applies one account's events in order and each answer reflects the events before it.
    const runs = await Promise.all(events.map((e) => this.apply(e, planEvent(e), policy)));
    this.roundTrips += events.length;

    const outcomes: EventOutcome[] = [];
    const recent = new Map<string, StoredObservation[]>();
    const firing: {
      accountId: string;
      at: number;
      eventId: string;
      observations: StoredObservation[];
      /** Signals to judge again once the observations are remembered (see recheckAfterMemory). */
      recheck: { signals: ActiveSignal[]; ctx: SignalContext; run: SubjectRun; outcome: EventOutcome };
    }[] = [];
    events.forEach((event, i) => {
      const { subjects, entities } = runs[i]!;
      const outcome: EventOutcome = { event, lateFor: [], evaluations: [] };
      outcomes.push(outcome);
      subjects.forEach((run, j) => {
        const accountId = run.plan.accountId;
        if (run.snapshot.late) {
          outcome.lateFor.push(accountId);
          return;
        }
        const view = (r: SubjectRun) =>
          new AccountView(r.snapshot, noveltyIndex(r.plan.ops), recent.get(r.plan.accountId) ?? []);
        const other = subjects.length > 1 ? subjects[1 - j] : undefined;
        const ctx: SignalContext = {
          event,
          role: run.plan.role,
          subject: view(run),
          entities,
          ...(other && { counterpart: view(other) }),
        };
        const observations = this.evaluate(run.signals, ctx, outcome, accountId);
        if (observations.length) {
          recent.set(accountId, mergeObservations(recent.get(accountId) ?? [], observations));
          const fired = new Set(observations.map((o) => o.signalId));
          const recheck = run.signals.filter(
            (s) => s.definition.recheckAfterMemory && !fired.has(s.definition.id),
          );
          firing.push({
            accountId,
            at: event.event.occurredAt,
            eventId: event.event.eventId,
            observations,
            recheck: { signals: recheck, ctx, run, outcome },
          });
        }
      });
    });

    // Round trip 2, only for accounts where a signal fired: remember the observations and read
    // back everything remembered, then score. Sequential per account, parallel across accounts.
    const result: BatchResult = { outcomes, emissions: [], stateWrites: [], policyVersion: policy.version };
    const byAccount = new Map<string, typeof firing>();
    for (const f of firing) byAccount.set(f.accountId, [...(byAccount.get(f.accountId) ?? []), f]);
    await Promise.all(
      [...byAccount].map(async ([accountId, items]) => {
        const resent = new Set<string>();
        for (const item of items) {
          const remember = (observations: StoredObservation[]) => {
            this.roundTrips++;
            return this.store.applyAccount(
              accountId,
              item.at,
              [
                {
                  op: 'observations',
                  observations,
                  correlationWindowMs: policy.config.features.correlationWindow,
                },
              ],
              [CONTRACTS, ...queriesFor(item.recheck.signals)],
            );
          };
          let snap = await remember(item.observations);
          // Another family's event may have been recorded between this event's two round trips;
          // judged again on the fresh read, a pattern spanning two topics cannot fall between them.
          if (item.recheck.signals.length) {
            const { ctx, run, outcome } = item.recheck;
            const fresh = new AccountView(
              { ...run.snapshot, results: snap.results, observations: snap.observations },
              noveltyIndex(run.plan.ops),
            );
            const more = this.evaluate(item.recheck.signals, { ...ctx, subject: fresh }, outcome, accountId);
            if (more.length) snap = await remember(more);
          }

          // A revision claimed but never confirmed: its batch crashed between the claim and the
          // send (this event is being replayed), or another instance stopped there long ago. Send
          // exactly that message again; a claim in flight elsewhere is left to its owner.
          for (const [queue, state] of snap.openFlags) {
            const p = state.pending as PendingFlag | undefined;
            if (!p || resent.has(`${p.flag.flagId}#${p.flag.revision}`)) continue;
            if (p.flag.triggeringEventId !== item.eventId && Date.now() - p.claimedAt < STALE_CLAIM_MS)
              continue;
            resent.add(`${p.flag.flagId}#${p.flag.revision}`);
            const confirmed = { ...state };
            delete confirmed.pending;
            result.emissions.push({ flag: p.flag });
            result.stateWrites.push({ accountId, at: item.at, queue, state: confirmed });
          }
          for (const first of this.score(snap, item.at, policy)) {
            let d: QueueDecision | undefined = first;
            for (let attempt = 1; d && attempt <= 3; attempt++) {
              const open: FlagState | undefined = snap.openFlags.get(d.queue);
              const update = updateFlag({
                accountId,
                decision: d,
                open,
                generation: snap.flagGenerations.get(d.queue) ?? 0,
                at: item.at,
                triggeringEventId: item.eventId,
                cfg: policy.config,
                configVersion: policy.version,
                processorVersion: policy.processorVersion,
              });
              if (!update) break;
              const pending: PendingFlag = { flag: update.flag, claimedAt: Date.now() };
              this.roundTrips++;
              const claim = await this.store.applyAccount(
                accountId,
                item.at,
                [
                  {
                    op: 'flagClaim',
                    queue: d.queue,
                    state: { ...update.state, pending },
                    expectedRevision: open?.revision ?? 0,
                  },
                ],
                [],
                false,
                undefined,
                [],
              );
              if (claim.opResults[0] === 1) {
                snap.openFlags.set(d.queue, update.state);
                result.emissions.push({ flag: update.flag, decision: d });
                result.stateWrites.push({ accountId, at: item.at, queue: d.queue, state: update.state });
                break;
              }
              // another batch (another family, another instance) moved this flag on meanwhile:
              // read it again and decide on what it holds now
              snap = await remember([]);
              const queue: string = d.queue;
              d = this.score(snap, item.at, policy).find((x) => x.queue === queue);
            }
          }
        }
      }),
    );
    return result;
  }

  private evaluate(
    signals: ActiveSignal[],
    ctx: SignalContext,
    outcome: EventOutcome,
    accountId: string,
  ): StoredObservation[] {
    const observations: StoredObservation[] = [];
    for (const { definition, params } of signals) {
      let evaluation: SignalEvaluation['evaluation'];
      try {
        evaluation = definition.evaluate(ctx, params);
      } catch (err) {
        this.onSignalError(definition.id, err);
        evaluation = { status: 'error', reason: (err as Error).message };
      }
      outcome.evaluations.push({ signalId: definition.id, accountId, evaluation });
      if (evaluation.status === 'fired') {
        observations.push({
          signalId: definition.id,
          family: definition.family,
          observedAt: ctx.event.event.occurredAt,
          eventId: ctx.event.event.eventId,
          observed: evaluation.observed,
          threshold: evaluation.threshold,
          window: evaluation.window,
          summary: evaluation.summary,
          evidenceEventIds: evaluation.evidenceEventIds,
        });
      }
    }
    return observations;
  }

  /** Scores what an account remembers: recent observations plus the signals of its open flags. */

  score(snap: AccountSnapshot, asOf: number, policy: Policy): QueueDecision[] {
    const flagged = [...snap.openFlags.values()].flatMap((f) => f.signals);
    const observations = mergeObservations(flagged, snap.observations);
    const contracts = (snap.results.get(queryKey(CONTRACTS)) as ContractRecord[] | undefined) ?? [];
    const mitigations = accountMitigations(
      { asOf, context: snap.context, contracts },
      policy.config.mitigations,
    );
    return decide(observations, policy.settings, mitigations, snap.clearedPatterns, asOf, policy.config);
  }

  /** Round trip 3: the open-flag states, once their flags are on the flag topic. */
  async commit(result: BatchResult): Promise<void> {
    this.roundTrips += result.stateWrites.length;
    await Promise.all(
      result.stateWrites.map((w) =>
        this.store.applyAccount(w.accountId, w.at, [{ op: 'flagState', queue: w.queue, state: w.state }], []),
      ),
    );
  }

  /**
   * A reviewer's decision closes the open flag. A cleared one remembers the pattern (queue and
   * signal families) so the same pattern is mitigated for the cooldown (principle 5).
   * Returns the closed flag's state, or undefined if that flag is not open (already handled).
   */
  async applyOutcome(o: ReviewOutcome): Promise<{ queue: string; state: FlagState } | undefined> {
    if (o.outcome === 'NEEDS_MORE_INFO') return undefined;
    const policy = this.currentPolicy();
    const snap = await this.store.applyAccount(o.accountId, -o.decidedAt, [], [], true);
    const open = [...snap.openFlags].find(([, s]) => s.flagId === o.flagId);
    if (!open) return undefined;
    const [queue, state] = open;
    const pattern = reviewPattern(
      queue,
      state.signals.map((s) => s.family),
    );
    if (o.outcome === 'CLEARED' || o.outcome === 'CONFIRMED') {
      await this.store.countOutcome(
        state.signals.map((s) => s.signalId),
        o.outcome,
      );
    }
    await this.store.applyAccount(
      o.accountId,
      o.decidedAt,
      [
        { op: 'flagClose', queue, flagId: o.flagId },

        ...(o.outcome === 'CLEARED'
          ? [
              {
                op: 'clearedPattern' as const,
                pattern,
                untilMs: o.decidedAt + policy.config.mitigations.cleared_review.cooldown,
              },
            ]
          : []),
      ],
      [],
    );
    return { queue, state };
  }

  /**
   * What a set of triggered signals asks of the store. An event triggers one of a few sets, so
   * this is worked out once per set and policy, not per event (per event it was about 2% of the
   * processor's profile). The answers are shared: nothing downstream may change them.
   */
  private needsOf(policy: Policy, key: string, signals: ActiveSignal[]): SignalSetNeeds {
    let bySet = this.needsCache.get(policy);
    if (!bySet) this.needsCache.set(policy, (bySet = new Map()));
    let needs = bySet.get(key);
    if (!needs) {
      const entityWindows: [EntityType, number][] = [];
      for (const { definition, params } of signals) {
        const need = definition.needs(params).entity;
        if (need) entityWindows.push([need.type, need.windowMs]);
      }
      needs = { queries: queriesFor(signals), memory: memoryFor(signals), entityWindows };
      bySet.set(key, needs);
    }
    return needs;
  }

  private async apply(
    event: EnrichedEvent,
    plan: EventPlan,
    policy: Policy,
  ): Promise<{ subjects: SubjectRun[]; entities: Partial<Record<EntityType, EntitySnapshot>> }> {
    const at = event.event.occurredAt;
    const subjects = plan.subjects.map((sp) => {
      const signals: ActiveSignal[] = [];
      let key = '';
      policy.signals.forEach((s, i) => {
        if (!s.definition.triggeredBy(event, sp.role)) return;
        signals.push(s);
        key += `${i},`;
      });
      return { sp, signals, ...this.needsOf(policy, key, signals) };
    });
    const entityWindow = new Map<EntityType, number>();
    for (const s of subjects) {
      for (const [type, windowMs] of s.entityWindows) {
        entityWindow.set(type, Math.max(entityWindow.get(type) ?? 0, windowMs));
      }
    }
    const subjectCalls = subjects.map((s) =>
      this.store.applyAccount(s.sp.accountId, at, s.sp.ops, s.queries, false, event.family, s.memory),
    );
    // an entity no triggered signal reads is only recorded (for explain and later events)
    const entityCalls = plan.entities.map((en) => {
      const windowMs = entityWindow.get(en.type);
      const query = windowMs === undefined ? undefined : { from: -windowMs, maxIds: 20 };
      return this.store.applyEntity(en.type, en.id, at, en.addAccount, query);
    });
    const [snapshots, entitySnaps] = await Promise.all([Promise.all(subjectCalls), Promise.all(entityCalls)]);
    const entities: Partial<Record<EntityType, EntitySnapshot>> = {};
    for (const e of entitySnaps) if (e) entities[e.type] = e;
    return {
      subjects: subjects.map((s, i) => ({ plan: s.sp, signals: s.signals, snapshot: snapshots[i]! })),
      entities,
    };
  }
}

/** What of the account's memory the triggered signals read. */
export function memoryFor(signals: ActiveSignal[]): AccountMemory[] {
  return [...new Set(signals.flatMap(({ definition, params }) => definition.needs(params).reads ?? []))];
}

/** The union of the triggered signals' questions, asked once each (with the most ids wanted). */

export function queriesFor(signals: ActiveSignal[]): AccountQuery[] {
  const byKey = new Map<string, AccountQuery>();
  for (const { definition, params } of signals) {
    for (const q of definition.needs(params).account) {
      const key = queryKey(q);
      const cur = byKey.get(key);
      if (!cur) byKey.set(key, q);
      else if (cur.q === 'count' && q.q === 'count') cur.maxIds = Math.max(cur.maxIds, q.maxIds);
      else if (cur.q === 'distinct' && q.q === 'distinct')
        cur.maxValues = Math.max(cur.maxValues, q.maxValues);
    }
  }
  return [...byKey.values()];
}
