// `npm run bench -- --profile`: a CPU profile and a sampling allocation profile of the benchmark's
// own process over fairflag's full-speed phase only (not the producer or the bare consumers), written
// next to the results file and summed up by where the code lives, to decide what to optimise.
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../src/runtime/project.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface CpuNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
}
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Where a frame's code lives: a package, a fairflag module, Node's own, or V8's pseudo-frames. */
export function placeOf(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f.url);
  if (pkg) return pkg[1]!;
  if (f.url.startsWith('node:')) return 'node internals';
  const root = `file://${PROJECT_ROOT}/`;
  return f.url.startsWith(root) ? f.url.slice(root.length) : f.url;
}

/** A function by name and where it lives, for the per-function sums. */
const frameKey = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${placeOf(f)}:${f.lineNumber + 1}`;
const survivorsOnly = () => process.env['FAIRFLAG_PROFILE_SURVIVORS'] === '1';

const top = (m: Map<string, number>, total: number, n: number, unit: (v: number) => string) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${unit(v).padStart(9)}  ${k}`);

export class PhaseProfile {
  private readonly session = new Session();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.session.post('HeapProfiler.enable');
    // every 4 KiB allocated on average; objects collected since count too (what the GC had to do)
    await this.session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      // or only what outlives a scavenge: what makes scavenges slow and fills the old generation
      includeObjectsCollectedByMinorGC: !survivorsOnly(),
    });
    await this.session.post('Profiler.start');
  }

  /** Stops both profiles, writes them under `base` (.cpuprofile, .heapprofile) and sums them up. */
  async stop(base: string, events: number): Promise<string[]> {
    const { profile } = (await this.session.post('Profiler.stop')) as unknown as {
      profile: { nodes: CpuNode[]; startTime: number; endTime: number };
    };
    const { profile: heap } = (await this.session.post('HeapProfiler.stopSampling')) as unknown as {
      profile: { head: HeapNode };
    };
    this.session.disconnect();
    writeFileSync(`${base}.cpuprofile`, JSON.stringify(profile));
    writeFileSync(`${base}.heapprofile`, JSON.stringify(heap));

    const hits = (n: CpuNode) => n.hitCount ?? 0;
    const allHits = profile.nodes.reduce((s, n) => s + hits(n), 0);
    const usPerHit = (profile.endTime - profile.startTime) / Math.max(1, allHits);
    const busy = new Map<string, number>();
    const fns = new Map<string, number>();
    let busyHits = 0;
    for (const n of profile.nodes) {
      if (!hits(n) || n.callFrame.functionName === '(idle)') continue;
      busyHits += hits(n);
      const place = placeOf(n.callFrame);
      busy.set(place, (busy.get(place) ?? 0) + hits(n));
      const fn = frameKey(n.callFrame);
      fns.set(fn, (fns.get(fn) ?? 0) + hits(n));
    }
    const perEvent = (h: number) => `${((h * usPerHit) / events).toFixed(1)} µs/ev`;

    const bytes = new Map<string, number>();
    const allocFns = new Map<string, number>();
    let allBytes = 0;
    const walk = (n: HeapNode) => {
      allBytes += n.selfSize;
      const place = placeOf(n.callFrame);
      bytes.set(place, (bytes.get(place) ?? 0) + n.selfSize);
      const fn = frameKey(n.callFrame);
      allocFns.set(fn, (allocFns.get(fn) ?? 0) + n.selfSize);
      n.children.forEach(walk);
    };
    walk(heap.head);
    const perEventBytes = (b: number) => `${(b / events / 1024).toFixed(1)} KiB/ev`;

    return [
      `CPU profile: ${perEvent(busyHits)} busy on the main thread; by where the code lives:`,
      ...top(busy, busyHits, 15, perEvent),
      'busiest functions (self time):',
      ...top(fns, busyHits, 25, perEvent),
      `allocated (sampled${survivorsOnly() ? ', outliving a scavenge' : ''}): ${perEventBytes(allBytes)}; by where:`,
      ...top(bytes, allBytes, 12, perEventBytes),
      'allocating functions:',
      ...top(allocFns, allBytes, 20, perEventBytes),
      `profiles: ${base.replace(`${PROJECT_ROOT}/`, '')}.cpuprofile / .heapprofile (Chrome DevTools)`,
    ];
  }
}
