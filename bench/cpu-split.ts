// Where the machine's cores go during a benchmark phase (Linux /proc): the CPU time of each named
// process and of the whole machine, so a result says whether the cores were full and who used
// them (processor, Redis, the Kafka broker, the registry, the rest). Elsewhere it reports nothing.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuMark {
  /** Machine-wide busy CPU seconds (all cores), from /proc/stat. */
  machineBusy: number;
  /** CPU seconds each named process has used so far; undefined when it cannot be read. */
  processes: Record<string, number | undefined>;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function processSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    // the command name (field 2) may hold spaces: the fields after it start past the last ')'
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return undefined;
  }
}

export function cpuMark(pids: Record<string, number | undefined>): CpuMark | undefined {
  let line: string;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal ...
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  const idle = t[3]! + t[4]!;
  const processes: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(pids)) processes[name] = processSeconds(pid);
  return { machineBusy: (total - idle) / clockTicks(), processes };
}

export interface CpuSplit {
  /** Cores busy on average over the phase, of the machine's count. */
  coresBusy: number;
  /** CPU microseconds per event of each named process, and of everything else on the machine. */
  microsecondsPerEvent: Record<string, number>;
}

export function cpuSplit(
  from: CpuMark | undefined,
  to: CpuMark | undefined,
  wallSeconds: number,
  events: number,
): CpuSplit | undefined {
  if (!from || !to || wallSeconds <= 0 || events <= 0) return undefined;
  const perEvent = (seconds: number) => Math.round((seconds * 1e6) / events);
  const microsecondsPerEvent: Record<string, number> = {};
  let named = 0;
  for (const [name, end] of Object.entries(to.processes)) {
    const start = from.processes[name];
    if (end === undefined || start === undefined) continue;
    named += end - start;
    microsecondsPerEvent[name] = perEvent(end - start);
  }
  const busy = to.machineBusy - from.machineBusy;
  microsecondsPerEvent['rest of the machine'] = perEvent(Math.max(0, busy - named));
  return { coresBusy: Math.round((busy / wallSeconds) * 100) / 100, microsecondsPerEvent };
}
