// Issue 6's targets (and the feature store's memory target), judged in every pipeline run so a
// results file says by itself which were met on that machine that day.
export interface TargetFigures {
  fairflagEventsPerSecond: number;
  ratioToBare: number;
  /** The latency targets are for 2,000 ev/s: judged only when about that much was offered. */
  steadyOfferedPerSecond: number;
  steadyFeaturesP99Ms: number | null;
  steadyFlagsP99Ms: number | null;
  roundTripsPerEvent: number;
  redisBytesPerActiveAccount: number;
}

export interface TargetVerdict {
  target: string;
  measured: string;
  met: boolean;
}

export function judgeTargets(f: TargetFigures): TargetVerdict[] {
  const atRate = f.steadyOfferedPerSecond >= 1_900;
  const ms = (x: number | null) =>
    `${x === null ? 'n/a' : `${x} ms`}${atRate ? '' : ` (at ${f.steadyOfferedPerSecond} ev/s: not judged)`}`;
  return [
    {
      target: 'sustained events/s >= 10,000',
      measured: `${f.fairflagEventsPerSecond}`,
      met: f.fairflagEventsPerSecond >= 10_000,
    },
    {
      target: 'sustained >= 50% of the bare kafkajs consumer',
      measured: `${(f.ratioToBare * 100).toFixed(1)}%`,
      met: f.ratioToBare >= 0.5,
    },
    {
      target: 'steady 2,000 ev/s: p99 produce -> features < 100 ms',
      measured: ms(f.steadyFeaturesP99Ms),
      met: atRate && f.steadyFeaturesP99Ms !== null && f.steadyFeaturesP99Ms < 100,
    },
    {
      target: 'steady 2,000 ev/s: p99 produce -> flag on topic < 150 ms',
      measured: ms(f.steadyFlagsP99Ms),
      met: atRate && f.steadyFlagsP99Ms !== null && f.steadyFlagsP99Ms < 150,
    },
    {
      target: 'Redis round trips per event <= 2',
      measured: `${f.roundTripsPerEvent}`,
      met: f.roundTripsPerEvent <= 2,
    },
    {
      target: 'Redis memory per active account < 4 KiB',
      measured: `${f.redisBytesPerActiveAccount} bytes`,
      met: f.redisBytesPerActiveAccount < 4096,
    },
  ];
}
