/**
 * Timing of repeated operations. Each measurement runs the operation once untimed (JIT warm-up,
 * first allocations), then repeats it until both a minimum count and a minimum time are
 * reached, so fast operations are not reported from a single noisy sample.
 */
import { performance } from 'node:perf_hooks';

/** How long to keep repeating an operation. */
export interface MeasureOptions {
  /** At least this many timed runs (default 3). */
  minRuns?: number;
  /** Keep repeating until this much time has passed (default 500 ms). */
  minTimeMs?: number;
}

/** Timing of one operation. */
export interface Measurement {
  runs: number;
  /** Median wall time of one run, in milliseconds: robust to a stray GC pause. */
  medianMs: number;
  /** Fastest run, in milliseconds. */
  minMs: number;
}

/** Times `operation` (sync or async) after one untimed warm-up run. */
export async function measure(
  operation: () => unknown,
  options: MeasureOptions = {},
): Promise<Measurement> {
  const minRuns = options.minRuns ?? 3;
  const minTimeMs = options.minTimeMs ?? 500;
  await operation();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minTimeMs) {
    const t0 = performance.now();
    await operation();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { runs: times.length, medianMs: median(times), minMs: times[0]! };
}

/** Seconds elapsed while `operation` runs (one run, no warm-up: the caller warms up). */
export async function timeOnce(operation: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await operation();
  return (performance.now() - t0) / 1000;
}

function median(sorted: number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
