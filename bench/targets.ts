// Issue 16's targets, judged in every pipeline run on its own figures, so a results file says by
// itself which were met on that machine that day. A target whose conditions the run did not
// create (another offered rate, no cache-bound scenario) is shown, not judged.
export interface SteadyTargetFigures {
  offeredPerSecond: number;
  featuresP99Ms: number | null;
  flagsP99Ms: number | null;
}

export interface TargetFigures {
  /** The bulk phase: the whole stream at full speed. */
  fairflagEventsPerSecond: number;
  ratioToBare: number;
  steady: SteadyTargetFigures;
  /** The second steady phase; null when it was not run. */
  steadyHigh: SteadyTargetFigures | null;
  /** The bulk phase's. */
  redisCpuMicrosecondsPerEvent: number;
  redisCommandsPerEvent: number;
  redisBytesWrittenPerEvent: number;
  cache: {
    maxAccounts: number;
    /** The workload's population, and the accounts the run's events touched. */
    accounts: number;
    activeAccounts: number;
    peakRssMiB: number;
    /** The bench process before any processor started (producer, bare consumers). */
    rssBeforeProcessorsMiB: number;
    warmEventsPerSecond: number | null;
    coldEventsPerSecond: number | null;
  };
}

export interface TargetVerdict {
  target: string;
  measured: string;
  /** False when the run did not create the target's conditions: `met` is then false too. */
  judged: boolean;
  met: boolean;
  /** The stretch goal, where the issue names one. */
  aim?: { target: string; met: boolean };
}

const STEADY_RATE = 2_000;
const HIGH_RATE = 10_000;
/** A steady phase counts as run at a rate when at least this share of it was offered. */
const OFFERED_SHARE = 0.95;
// A population of 100,000 of which at least 95% were active: the rest is the workload's chance.
const CACHE = { maxAccounts: 10_000, accounts: 100_000, activeShare: 0.95, peakRssMiB: 400 };

const ms = (x: number | null) => (x === null ? 'n/a' : `${x} ms`);
const n = (x: number) => x.toLocaleString('en-US');

export function judgeTargets(f: TargetFigures): TargetVerdict[] {
  const atSteady = f.steady.offeredPerSecond >= STEADY_RATE * OFFERED_SHARE;
  const notAt = (offered: number) => ` (offered ${n(offered)} ev/s: not judged)`;
  const steadyNote = atSteady ? '' : notAt(f.steady.offeredPerSecond);
  const high = f.steadyHigh;
  const atHigh = high !== null && high.offeredPerSecond >= HIGH_RATE * OFFERED_SHARE;
  const c = f.cache;
  const cacheBound =
    c.maxAccounts <= CACHE.maxAccounts &&
    c.accounts >= CACHE.accounts &&
    c.activeAccounts >= c.accounts * CACHE.activeShare;
  const within = (x: number | null, limit: number) => x !== null && x <= limit;
  return [
    {
      target: 'sustained events/s >= 20,000',
      measured: n(f.fairflagEventsPerSecond),
      judged: true,
      met: f.fairflagEventsPerSecond >= 20_000,
      aim: { target: '50,000', met: f.fairflagEventsPerSecond >= 50_000 },
    },
    {
      target: 'sustained >= 10% of the bare kafkajs consumer',
      measured: `${(f.ratioToBare * 100).toFixed(1)}%`,
      judged: true,
      met: f.ratioToBare >= 0.1,
      aim: { target: '25%', met: f.ratioToBare >= 0.25 },
    },
    {
      target: 'steady 2,000 ev/s: p99 produce -> features durable in Redis <= 50 ms',
      measured: ms(f.steady.featuresP99Ms) + steadyNote,
      judged: atSteady,
      met: atSteady && within(f.steady.featuresP99Ms, 50),
    },
    {
      target: 'steady 2,000 ev/s: p99 produce -> flag on the flag topic <= 75 ms',
      measured: ms(f.steady.flagsP99Ms) + steadyNote,
      judged: atSteady,
      met: atSteady && within(f.steady.flagsP99Ms, 75),
    },
    {
      target: 'steady 10,000 ev/s: p99 produce -> flag on the flag topic <= 250 ms',
      measured: high
        ? `${ms(high.flagsP99Ms)} (features p99 ${ms(high.featuresP99Ms)})${atHigh ? '' : notAt(high.offeredPerSecond)}`
        : 'not run (--high-rate 0)',
      judged: atHigh,
      met: atHigh && within(high.flagsP99Ms, 250),
    },
    {
      target: 'Redis CPU per event <= 20 µs',
      measured: `${f.redisCpuMicrosecondsPerEvent} µs (${f.redisCommandsPerEvent} commands, ${n(f.redisBytesWrittenPerEvent)} B of account values written per event)`,
      judged: true,
      met: f.redisCpuMicrosecondsPerEvent <= 20,
    },
    {
      target: 'cache of 10,000 accounts over 100,000 active: peak RSS <= 400 MiB',
      measured:
        `${n(c.peakRssMiB)} MiB (${n(c.rssBeforeProcessorsMiB)} before any processor; cache ${n(c.maxAccounts)}, ${n(c.activeAccounts)} of ${n(c.accounts)} accounts active; ` +
        `cold ${c.coldEventsPerSecond === null ? 'n/a' : n(c.coldEventsPerSecond)} ev/s, ` +
        `warm ${c.warmEventsPerSecond === null ? 'n/a' : n(c.warmEventsPerSecond)} ev/s)` +
        (cacheBound ? '' : ': not judged, run with --cache-bound and 95% of the accounts active'),
      judged: cacheBound,
      met: cacheBound && c.peakRssMiB <= CACHE.peakRssMiB,
    },
  ];
}

/** One line per verdict: met / missed / n/a (not judged), the target, what was measured. */
export function formatVerdicts(verdicts: TargetVerdict[]): string[] {
  const w = Math.max(...verdicts.map((t) => t.target.length));
  return verdicts.map((t) => {
    const verdict = !t.judged ? 'n/a   ' : t.met ? 'met   ' : 'missed';
    const aim = t.aim && t.judged ? ` [aim ${t.aim.target}: ${t.aim.met ? 'met' : 'missed'}]` : '';
    return `${verdict}  ${t.target.padEnd(w)}  ${t.measured}${aim}`;
  });
}
