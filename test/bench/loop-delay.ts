import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { LoopDelay } from './load-ipc';

/** The sampling interval of the event-loop monitors, taken off every figure they report. */
const LOOP_RESOLUTION_MS = 10;

/** Starts measuring this process's event-loop delay (the load bench's two sides each do). */
export function startLoopMonitor(): IntervalHistogram {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  histogram.enable();
  return histogram;
}

/** The monitor's percentiles in ms, the sampling interval already taken off. */
export function loopDelayOf(h: IntervalHistogram): LoopDelay {
  const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
  return {
    p50: ms(h.percentile(50)),
    p99: ms(h.percentile(99)),
    max: ms(h.max),
    mean: ms(h.mean),
    samples: h.count,
  };
}
