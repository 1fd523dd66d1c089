// One batch, in the order data flows: plan -> load what is not in memory -> for each input in turn:
// admit (replay? conflicting duplicate?) -> update state -> signals -> remember -> score -> flag;
// then snapshot the partition's changed state for the caller to produce, persist and commit.
// Shared by the live pipeline and replay, so an analyst's replay runs exactly production's code.
//
// Every input is judged against the state as of itself, one after the other: the same inputs give
// the same features, observations and flags however they are split into batches.
import { planEvent } from '../../processors/registry.js';
import type { EntityPlan, EventPlan, SubjectPlan } from '../../processors/plan.js';
import { isUnknownStep, type EnrichedEvent, type ReviewOutcome } from '../domain/events.js';
import { updateFlag, type ReviewFlag } from '../domain/flags.js';
import { accountMitigations, historyUnknown, patternKey } from '../domain/mitigations.js';
import { decide, type QueueDecision } from '../domain/scoring.js';
import type { Evaluation, SignalContext, SubjectRole } from '../domain/signal.js';
import { AccountFeatures, digestOf, type Applied } from '../features/account-features.js';
import {
  queryKey,
  type AccountOp,
  type AccountQuery,
  type AccountSnapshot,
  type EntitySnapshot,
  type EntityType,
  type FeatureLayout,
  type FlagState,
  type StoredObservation,
  type ValueKind,
} from '../features/model.js';
import type { OwnedAccount, OwnedAccounts, AccountSnapshotWrite } from '../features/owned-accounts.js';
import {
  EntityOverlay,
  entityKey,
  type EntityAccounts,
  type EntityRef,
} from '../features/shared-entities.js';
import type { StateBackend, StateWrite } from '../features/state-backend.js';
import { AccountView, mergeObservations, noveltyIndex } from '../features/view.js';
import {
  COUNTERPART_FORMAT,
  type CounterpartRecord,
  type PairRecord,
  type SideRecord,
} from './counterparts.js';
import type { ActiveSignal, Policy } from './policy.js';
import { WriteOrder, type WriteTurn } from './write-order.js';

export type EngineInput =
  | { kind: 'event'; event: EnrichedEvent }
  | { kind: 'outcome'; outcome: ReviewOutcome }
  | { kind: 'counterpart'; record: CounterpartRecord };

export interface SignalEvaluation {
  signalId: string;
  accountId: string;
  evaluation: Evaluation | { status: 'error'; reason: string };
}

export interface InputOutcome {
  /**
   * applied; replay = the same event again (changes nothing); conflict = the same id with other
   * content (dead-lettered as conflicting_duplicate); error = handling it threw (dead-lettered as
   * processing_error: one message never stops its partition).
   */
  status: 'applied' | 'replay' | 'conflict' | 'error';
  /** Why a conflict or an error was refused (the dead letter's detail). */
  detail?: string;
  /** Accounts for which the event was older than the allowed lateness. */
  lateFor: string[];
  evaluations: SignalEvaluation[];
}

export interface FlagEmission {
  flag: ReviewFlag;
  decision: QueueDecision;
}

export interface ClosedFlag {
  accountId: string;
  queue: string;
  state: FlagState;
  outcome: ReviewOutcome['outcome'];
}

export interface BatchResult {
  /** One per input, in input order. */
  outcomes: InputOutcome[];
  /** In emission order; produce them before persisting the state. */
  emissions: FlagEmission[];
  /** Every scoring of an account, in order, flagged or not (replay's score distribution). */
  scored: { accountId: string; decision: QueueDecision }[];
  /** Records for other accounts' owners (the counterpart topic); empty when applied inline. */
  counterparts: CounterpartRecord[];
  closed: ClosedFlag[];
  /** The batch's durable changes: entities, and the partition's accounts changed so far. */
  write: StateWrite & { accounts: AccountSnapshotWrite[] };
  /** This batch's place in its partition's write order (see write-order.ts). */
  turn: WriteTurn;
  policyVersion: string;
  /** Time spent evaluating signals and scoring (ms), part of the batch's processing time. */
  signalsMs: number;
}

export interface EngineOptions {
  accounts: OwnedAccounts;
  backend: StateBackend;
  policy: () => Policy;
  /**
   * "emit": the other side of a contract goes to its owner as a record (the live pipeline);
   * "inline": it is applied at once, as if that record were consumed immediately (replay, tests).
   */
  counterparts: 'emit' | 'inline';
  onSignalError?: (signalId: string, err: unknown) => void;
  /** A batch failed after changing memory (see StateAtRiskError): the live processor exits. */
  onStateAtRisk?: (err: unknown) => void;
}

/** A batch failed after its changes were applied in memory: replaying it would lose its flags. */
export class StateAtRiskError extends Error {
  constructor(partition: number, cause: unknown) {
    super(
      `partition ${partition}: a batch failed after changing memory: ${(cause as Error)?.message ?? String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'StateAtRiskError';
  }
}

/**
 * A digest of an event's content: the same id with another digest is a conflicting duplicate.
 * Decoded events hold their fields in schema order (Avro decodes them so; replay normalises
 * NDJSON through the schema), so their JSON is canonical.
 */
export function contentDigest(family: string, event: object): string {
  return digestOf(`${family}\n${JSON.stringify(event)}`);
}

interface Planned {
  input: EngineInput;
  /** For events: the processor's plan and the content digest. */
  plan?: EventPlan;
  digest?: string;
  /** Planning threw: the input is refused before it changes anything. */
  error?: string;
}

/** What a subject's triggered signals need, worked out once per signal set and policy. */
interface SignalSet {
  local: ActiveSignal[];
  pairwise: ActiveSignal[];
  entityWindows: Map<EntityType, number>;
}

interface Run {
  owned: Map<string, OwnedAccount>;
  overlay: EntityOverlay;
  policy: Policy;
  result: BatchResult;
}

export class Engine {
  private readonly signalSets = new WeakMap<Policy, Map<string, SignalSet>>();
  private readonly order = new WriteOrder();
  /** Running total of signal evaluation and scoring time (ms); a batch reads its share. */
  private signalsMs = 0;

  constructor(private readonly opts: EngineOptions) {}

  private get accounts(): OwnedAccounts {
    return this.opts.accounts;
  }

  /** Processes one batch of one partition (replay uses partition 0 for everything). */
  async process(inputs: readonly EngineInput[], partition: number): Promise<BatchResult> {
    const policy = this.opts.policy();
    const planned = inputs.map((input) => this.plan(input));
    const { owned, entities } = await this.load(planned, partition, policy);
    const result: BatchResult = {
      outcomes: [],
      emissions: [],
      scored: [],
      counterparts: [],
      closed: [],
      write: { entities: [], accounts: [], reviews: [] },
      turn: undefined as unknown as WriteTurn,
      policyVersion: policy.version,
      signalsMs: 0,
    };
    const run: Run = { owned, overlay: new EntityOverlay(entities, policy.layout), policy, result };
    // the steps run synchronously: no other batch's signal time lands in between
    const signalsBefore = this.signalsMs;
    try {
      for (const p of planned) result.outcomes.push(this.step(p, run));
    } finally {
      this.accounts.release(owned.values());
      result.signalsMs = this.signalsMs - signalsBefore;
    }
    // synchronously with the last step: the snapshot holds exactly the batches processed so far,
    // and the write order is the processing order
    try {
      result.write.entities = run.overlay.updates();
      result.write.accounts = this.accounts.snapshot(partition);
      result.turn = this.order.take(partition);
    } catch (err) {
      // Memory already holds this batch's changes and its flags would be lost with the batch: it
      // must not be retried, nor may a later batch write those changes. Nothing should throw
      // here; if something does, the owner stops (a new process replays from the last commit).
      this.opts.onStateAtRisk?.(err);
      throw new StateAtRiskError(partition, err);
    }
    return result;
  }

  /**
   * Writes a processed batch's state. Call it in the batch's turn (after `turn.ready`) and after
   * its flags and counterpart records are produced; it may be called again after a failure.
   */
  async persist(result: BatchResult): Promise<void> {
    await this.opts.backend.write(result.write, this.opts.policy().accountTtlMs);
    this.accounts.persisted(result.write.accounts);
  }

  /**
   * Forgets partitions (all when not given): their accounts are dropped from memory and their
   * write order starts again. After a revoke, or a batch that gave up before persisting.
   */
  forget(partitions?: ReadonlySet<number>): number {
    if (partitions) for (const p of partitions) this.order.reset(p);
    else this.order.reset();
    return this.accounts.drop(partitions);
  }

  // -------------------------------------------------------------------------------------------
  // plan and load

  private plan(input: EngineInput): Planned {
    if (input.kind !== 'event') return { input };
    try {
      return {
        input,
        plan: planEvent(input.event),
        digest: contentDigest(input.event.family, input.event.event),
      };
    } catch (err) {
      return { input, error: describe(err) };
    }
  }

  /** Every account the batch changes and every shared entity its signals ask about, in one read each. */
  private async load(
    planned: Planned[],
    partition: number,
    policy: Policy,
  ): Promise<{ owned: Map<string, OwnedAccount>; entities: Map<string, EntityAccounts> }> {
    const wanted = new Map<string, number>();
    const reads = new Map<string, EntityRef>();
    for (const p of planned) {
      const i = p.input;
      if (p.error) continue;
      if (i.kind === 'outcome') wanted.set(i.outcome.accountId, partition);
      else if (i.kind === 'counterpart') wanted.set(i.record.accountId, partition);
      else {
        const acting = this.actingSubject(p.plan!, i.event);
        wanted.set(acting.accountId, partition);
        if (this.opts.counterparts === 'inline')
          for (const s of p.plan!.subjects) wanted.set(s.accountId, partition);
        // every kept entity the batch writes is read first: its answers and its write both
        // start from what is stored
        for (const en of p.plan!.entities)
          if (policy.entityTypes.has(en.type)) reads.set(entityKey(en), { type: en.type, id: en.id });
      }
    }
    const refs = [...reads.values()];
    const [owned, read] = await Promise.all([
      this.accounts.acquire(wanted),
      refs.length ? this.opts.backend.readEntities(refs) : Promise.resolve([]),
    ]);
    return { owned, entities: new Map(refs.map((r, i) => [entityKey(r), read[i]!])) };
  }

  private actingSubject(plan: EventPlan, event: EnrichedEvent): SubjectPlan {
    return plan.subjects.find((s) => s.accountId === event.event.accountId) ?? plan.subjects[0]!;
  }

  private signalSet(policy: Policy, event: EnrichedEvent, role: SubjectRole): SignalSet {
    let byKey = this.signalSets.get(policy);
    if (!byKey) this.signalSets.set(policy, (byKey = new Map()));
    // a step this version does not know says nothing to any signal (docs/schemas.md)
    const triggered = isUnknownStep(event)
      ? []
      : policy.signals.filter((s) => s.definition.triggeredBy(event, role));
    const key = triggered.map((s) => s.definition.id).join(',');
    let set = byKey.get(key);
    if (!set) {
      const entityWindows = new Map<EntityType, number>();
      for (const { definition, params } of triggered) {
        const need = definition.needs(params).entity;
        if (need) entityWindows.set(need.type, Math.max(entityWindows.get(need.type) ?? 0, need.windowMs));
      }
      set = {
        local: triggered.filter((s) => !s.definition.pairwise),
        pairwise: triggered.filter((s) => s.definition.pairwise),
        entityWindows,
      };
      byKey.set(key, set);
    }
    return set;
  }

  // -------------------------------------------------------------------------------------------
  // one input

  private step(p: Planned, run: Run): InputOutcome {
    const i = p.input;
    if (p.error) return { status: 'error', detail: p.error, lateFor: [], evaluations: [] };
    try {
      if (i.kind === 'outcome') return this.applyOutcome(i.outcome, run);
      if (i.kind === 'counterpart')
        return i.record.kind === 'side' ? this.applySide(i.record, run) : this.applyPair(i.record, run);
      return this.applyEvent(i.event, p.plan!, p.digest!, run);
    } catch (err) {
      // Unexpected: a bug or an input nothing checked for. The input is dead-lettered with the
      // error and the batch goes on; what it changed before throwing stays (it is logged).
      return { status: 'error', detail: describe(err), lateFor: [], evaluations: [] };
    }
  }

  private applyEvent(event: EnrichedEvent, plan: EventPlan, digest: string, run: Run): InputOutcome {
    const e = event.event;
    const acting = this.actingSubject(plan, event);
    const o = run.owned.get(acting.accountId)!;
    const admitted = this.admit(o, e.eventId, digest);
    if (admitted) return admitted;
    const out: InputOutcome = { status: 'applied', lateFor: [], evaluations: [] };
    const applied = this.updateState(o, e.eventId, e.occurredAt, acting.ops, event.family, digest);
    for (const en of plan.entities)
      if (en.addAccount && run.policy.entityTypes.has(en.type))
        run.overlay.see(en, en.addAccount, e.occurredAt);
    if (applied.late) out.lateFor.push(acting.accountId);
    else {
      const set = this.signalSet(run.policy, event, acting.role);
      const ctx: SignalContext = {
        event,
        role: acting.role,
        subject: this.view(o.features, e.occurredAt, applied, acting.ops, run.policy.layout),
        entities: this.entityAnswers(plan.entities, set, e.occurredAt, run.overlay),
      };
      this.judge(o, set.local, ctx, out, e.eventId, run);
    }
    if (event.family === 'contract') {
      const other = plan.subjects.find((s) => s !== acting);
      if (other)
        this.sendSide(event as Extract<EnrichedEvent, { family: 'contract' }>, other, digest, o, run);
    }
    return out;
  }

  /** Recognises a replay (a silent no-op) and a conflicting duplicate. */
  private admit(o: OwnedAccount, eventId: string, digest: string) {
    const seen = o.features.recall(eventId, digest);
    if (seen === 'replay') return { status: 'replay' as const, lateFor: [], evaluations: [] };
    if (seen === 'conflict') {
      const before = o.features.seenEvent(eventId)!;
      return {
        status: 'conflict' as const,
        detail: `event id ${eventId} was applied for ${o.features.accountId} at ${new Date(before.at).toISOString()} with other content (digest ${before.digest}, this one ${digest}); the first one counts`,
        lateFor: [],
        evaluations: [],
      };
    }
    return undefined;
  }

  /** Applies an event's ops; an event applied (not late) is remembered by its id and digest. */
  private updateState(
    o: OwnedAccount,
    eventId: string,
    at: number,
    ops: SubjectPlan['ops'],
    family: string,
    digest: string,
  ): Applied {
    const applied = o.features.apply(at, ops, family);
    if (!applied.late) o.features.remember(eventId, at, family, digest);
    this.accounts.changed(o);
    return applied;
  }

  private entityAnswers(
    entities: EntityPlan[],
    set: SignalSet,
    at: number,
    overlay: EntityOverlay,
  ): Partial<Record<EntityType, EntitySnapshot>> {
    const out: Partial<Record<EntityType, EntitySnapshot>> = {};
    for (const en of entities) {
      const windowMs = set.entityWindows.get(en.type);
      if (windowMs !== undefined) out[en.type] = overlay.accountsOn(en, at - windowMs, 20);
    }
    return out;
  }

  /** Evaluates signals, remembers what fired, and scores the account if anything did. */
  private judge(
    o: OwnedAccount,
    signals: ActiveSignal[],
    ctx: SignalContext,
    out: InputOutcome,
    eventId: string,
    run: Run,
  ): void {
    const from = out.evaluations.length;
    const observations = this.evaluate(signals, ctx, out, o.features.accountId);
    this.recordOccurrences(o, ctx.event, out.evaluations.slice(from));
    if (observations.length) this.rememberAndScore(o, ctx.event.event.occurredAt, eventId, observations, run);
  }

  /** What a signal said this event is an occurrence of (a sharing episode) is kept for its later counts. */
  private recordOccurrences(o: OwnedAccount, event: EnrichedEvent, evaluations: SignalEvaluation[]): void {
    const ops: AccountOp[] = [];
    for (const { evaluation: ev } of evaluations)
      if ((ev.status === 'fired' || ev.status === 'below') && ev.recordAs)
        ops.push({ op: 'event', kind: ev.recordAs, eventId: event.event.eventId });
    if (!ops.length) return;
    o.features.apply(event.event.occurredAt, ops, event.family);
    this.accounts.changed(o);
  }

  private rememberAndScore(
    o: OwnedAccount,
    at: number,
    eventId: string,
    observations: StoredObservation[],
    run: Run,
  ): void {
    o.features.rememberObservations(at, observations, run.policy.config.features.correlationWindow);
    this.accounts.changed(o);
    const started = performance.now();
    const decisions = this.score(o.features, at, run.policy);
    this.signalsMs += performance.now() - started;
    for (const d of decisions) {
      run.result.scored.push({ accountId: o.features.accountId, decision: d });
      const update = updateFlag({
        accountId: o.features.accountId,
        decision: d,
        open: o.features.openFlags.get(d.queue),
        generation: o.features.flagGenerations.get(d.queue) ?? 0,
        at,
        triggeringEventId: eventId,
        cfg: run.policy.config,
        configVersion: run.policy.version,
        processorVersion: run.policy.processorVersion,
      });
      if (!update) continue;
      o.features.openFlags.set(d.queue, update.state);
      run.result.emissions.push({ flag: update.flag, decision: d });
    }
  }

  // -------------------------------------------------------------------------------------------
  // the other side of a contract

  private sendSide(
    event: Extract<EnrichedEvent, { family: 'contract' }>,
    other: SubjectPlan,
    digest: string,
    o: OwnedAccount,
    run: Run,
  ): void {
    const set = this.signalSet(run.policy, event, other.role);
    const kinds = new Map<ValueKind, number>();
    for (const { definition, params } of set.pairwise)
      for (const q of definition.needs(params).account)
        if (q.q === 'distinct') kinds.set(q.kind, Math.max(kinds.get(q.kind) ?? 0, -q.from));
    const at = event.event.occurredAt;
    const record: SideRecord = {
      v: COUNTERPART_FORMAT,
      kind: 'side',
      accountId: other.accountId,
      event: event.event,
      digest,
      actingValues: [...kinds].map(([kind, windowMs]) => ({
        kind,
        values: valuesSince(o.features, kind, at - windowMs),
      })),
    };
    this.route(record, run);
  }

  private route(record: CounterpartRecord, run: Run): void {
    if (this.opts.counterparts === 'emit') run.result.counterparts.push(record);
    else if (record.kind === 'side') this.applySide(record, run);
    else this.applyPair(record, run);
  }

  private applySide(r: SideRecord, run: Run): InputOutcome {
    const e = r.event;
    const o = run.owned.get(r.accountId)!;
    const admitted = this.admit(o, e.eventId, r.digest);
    if (admitted) return admitted;
    const out: InputOutcome = { status: 'applied', lateFor: [], evaluations: [] };
    // the other side's ops never include the acting account's network facts: no geo needed
    const event: EnrichedEvent = { family: 'contract', event: e, geo: null };
    const plan = planEvent(event);
    const side = plan.subjects.find((s) => s.accountId === r.accountId);
    const acting = plan.subjects.find((s) => s.accountId !== r.accountId);
    if (!side || !acting) return out;
    const applied = this.updateState(o, e.eventId, e.occurredAt, side.ops, 'contract', r.digest);
    if (applied.late) {
      out.lateFor.push(r.accountId);
      return out;
    }
    const set = this.signalSet(run.policy, event, side.role);
    const subject = this.view(o.features, e.occurredAt, applied, side.ops, run.policy.layout);
    const actingFeatures = AccountFeatures.withValues(acting.accountId, run.policy.layout, r.actingValues);
    const actingView = this.view(
      actingFeatures,
      e.occurredAt,
      { late: false, lastSeenBefore: [] },
      [],
      run.policy.layout,
    );
    const ctx: SignalContext = { event, role: side.role, subject, counterpart: actingView, entities: {} };
    const observations = this.evaluate(set.local, ctx, out, r.accountId);
    observations.push(...this.evaluate(set.pairwise, ctx, out, r.accountId));
    if (observations.length) this.rememberAndScore(o, e.occurredAt, e.eventId, observations, run);
    // the pair, judged for the acting account too: both sets of values are known only here
    const actingSet = this.signalSet(run.policy, event, acting.role);
    const theirs = this.evaluate(
      actingSet.pairwise,
      { event, role: acting.role, subject: actingView, counterpart: subject, entities: {} },
      out,
      acting.accountId,
    );
    if (theirs.length)
      this.route(
        {
          v: COUNTERPART_FORMAT,
          kind: 'pair',
          accountId: acting.accountId,
          eventId: e.eventId,
          at: e.occurredAt,
          observations: theirs,
        },
        run,
      );
    return out;
  }

  private applyPair(r: PairRecord, run: Run): InputOutcome {
    const o = run.owned.get(r.accountId)!;
    this.rememberAndScore(o, r.at, r.eventId, r.observations, run);
    return { status: 'applied', lateFor: [], evaluations: [] };
  }

  // -------------------------------------------------------------------------------------------
  // review outcomes

  /**
   * A reviewer's decision closes the open flag. A cleared one remembers the pattern (queue,
   * families and signals) so the same pattern is not raised again for the cooldown (principle 5).
   */
  private applyOutcome(r: ReviewOutcome, run: Run): InputOutcome {
    const out: InputOutcome = { status: 'applied', lateFor: [], evaluations: [] };
    // a decision added after this version (UNKNOWN, docs/schemas.md): not counted, the flag stays open
    if (r.outcome === 'UNKNOWN') return out;
    const o = run.owned.get(r.accountId)!;
    const open = [...o.features.openFlags].find(([, s]) => s.flagId === r.flagId);
    if (!open) return out;
    const [queue, flag] = open;
    // counted for the signals report whatever the decision; once closed, a repeat finds no flag
    run.result.write.reviews.push({
      outcomeId: r.outcomeId,
      flagId: r.flagId,
      queue,
      outcome: r.outcome,
      decidedAt: r.decidedAt,
      signals: flag.signals.map((s) => s.signalId),
    });
    // more information wanted: the flag stays open, in front of the reviewer
    if (r.outcome === 'NEEDS_MORE_INFO') return out;
    const state = o.features.closeFlag(queue, r.flagId)!;
    if (r.outcome === 'CLEARED') {
      const cooldown = run.policy.config.mitigations.cleared_review.cooldown;
      o.features.clearPattern(patternKey(queue, state.signals), r.decidedAt + cooldown);
      // what the reviewer saw and cleared is never presented again as new evidence
      o.features.forgetObservations(state.signals.map((s) => s.signalId));
    }
    this.accounts.changed(o);
    run.result.closed.push({ accountId: r.accountId, queue, state, outcome: r.outcome });
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // signals and scores

  private evaluate(
    signals: ActiveSignal[],
    ctx: SignalContext,
    out: InputOutcome,
    accountId: string,
  ): StoredObservation[] {
    const started = performance.now();
    const observations: StoredObservation[] = [];
    for (const { definition, params } of signals) {
      let evaluation: SignalEvaluation['evaluation'];
      try {
        evaluation = definition.evaluate(ctx, params);
      } catch (err) {
        this.opts.onSignalError?.(definition.id, err);
        evaluation = { status: 'error', reason: (err as Error).message };
      }
      out.evaluations.push({ signalId: definition.id, accountId, evaluation });
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
    this.signalsMs += performance.now() - started;
    return observations;
  }

  score(f: AccountFeatures, asOf: number, policy: Policy): QueueDecision[] {
    return scoreAccount(f, asOf, policy);
  }

  /** process, then (in the batch's turn) persist: for tools with nothing to produce (replay). */
  async run(inputs: readonly EngineInput[], partition: number): Promise<BatchResult> {
    const result = await this.process(inputs, partition);
    try {
      await result.turn.ready;
      await this.persist(result);
      result.turn.done();
    } catch (err) {
      result.turn.fail(err);
      this.forget(new Set([partition]));
      throw err;
    }
    return result;
  }

  /** What a signal sees of an account as of `at`. */
  view(
    f: AccountFeatures,
    at: number,
    applied: Applied,
    ops: SubjectPlan['ops'],
    layout: FeatureLayout,
  ): AccountView {
    return new AccountView(snapshotOf(f, at, applied, layout), noveltyIndex(ops));
  }
}

/** Scores what an account remembers: recent observations plus the signals of its open flags. */
export function scoreAccount(f: AccountFeatures, asOf: number, policy: Policy): QueueDecision[] {
  const flagged = [...f.openFlags.values()].flatMap((s) => s.signals);
  const observations = mergeObservations(flagged, [...f.observations.values()]);
  const mitigations = accountMitigations(
    { asOf, context: f.context, contracts: f.contractList() },
    policy.config.mitigations,
  );
  const decisions = decide(
    observations,
    policy.settings,
    mitigations,
    f.clearedPatterns,
    asOf,
    policy.config,
  );
  if (historyUnknown(f.context)) for (const d of decisions) d.historyUnknown = true;
  return decisions;
}

/** The union of the signals' questions, asked once each (with the most ids wanted). */
export function queriesFor(signals: ActiveSignal[]): AccountQuery[] {
  const byKey = new Map<string, AccountQuery>();
  for (const { definition, params } of signals) {
    for (const q of definition.needs(params).account) {
      const key = queryKey(q);
      const cur = byKey.get(key);
      if (!cur) byKey.set(key, { ...q });
      else if (cur.q === 'count' && q.q === 'count') cur.maxIds = Math.max(cur.maxIds, q.maxIds);
      else if (cur.q === 'distinct' && q.q === 'distinct')
        cur.maxValues = Math.max(cur.maxValues, q.maxValues);
    }
  }
  return [...byKey.values()];
}

/** The account as of `at`, answering only windows its retention covers (see MissingFeatureError). */
export function snapshotOf(
  f: AccountFeatures,
  at: number,
  applied: Applied,
  layout: FeatureLayout,
): AccountSnapshot {
  return new FeaturesAsOf(f, at, applied, layout);
}

/** A class rather than an object of closures: one is made per subject of every event. */
class FeaturesAsOf implements AccountSnapshot {
  constructor(
    private readonly f: AccountFeatures,
    readonly asOf: number,
    private readonly applied: Applied,
    private readonly layout: FeatureLayout,
  ) {}
  get accountId() {
    return this.f.accountId;
  }
  get late() {
    return this.applied.late;
  }
  get lastSeenBefore() {
    return this.applied.lastSeenBefore;
  }
  answer(q: AccountQuery) {
    return retained(q, this.layout) ? this.f.answer(q, this.asOf) : undefined;
  }
  get context() {
    return this.f.context;
  }
  get lastLogin() {
    return this.f.lastLogin;
  }
  get previousLogin() {
    return this.f.previousLogin;
  }
  get observations() {
    return [...this.f.observations.values()];
  }
  get openFlags() {
    return this.f.openFlags;
  }
  get clearedPatterns() {
    return this.f.clearedPatterns;
  }
}

/** Whether the layout keeps data long enough to answer the question exactly. */
function retained(q: AccountQuery, l: FeatureLayout): boolean {
  switch (q.q) {
    case 'count':
      return Math.max(-q.from, q.to) + l.allowedLatenessMs <= l.eventRetentionMs[q.kind];
    case 'distinct':
      return -q.from <= l.valueRetentionMs;
    case 'sessions':
      return -q.from + l.allowedLatenessMs <= l.sessionRetentionMs;
    case 'contracts':
      return true;
  }
}

function valuesSince(f: AccountFeatures, kind: ValueKind, since: number): [string, number][] {
  const out: [string, number][] = [];
  for (const [v, t] of f.values.get(kind) ?? []) if (t > since) out.push([v, t]);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** An error as a dead letter's detail: its class and message. */
function describe(err: unknown): string {
  const e = err as Error;
  return `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`;
}
