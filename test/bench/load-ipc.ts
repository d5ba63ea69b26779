/**
 * The messages between the "load" bench and its coordinator process (load-coordinator.ts
 * forks load-coordinator-process.ts). Declared once so both ends agree on every field: the
 * coordinator runs in a process of its own so that the memory and event-loop delay measured
 * are the coordinator's alone, not those of the 1,000 simulated clients driving it.
 */
import type { CoordinatorConfigInput } from '../../coordinator/config';
import type { RoundHistoryEntry } from '../../coordinator/history';

/**
 * The two measuring windows the process keeps: `step` spans a whole step (growing the fleet,
 * then its round), `phase` one part of it (the growth, or the round).
 */
export type StatsWindowName = 'step' | 'phase';

/** What the bench asks; every request is answered once, by id. */
export type LoadRequest =
  | { id: number; type: 'start'; config: CoordinatorConfigInput }
  | { id: number; type: 'round'; timeoutMs: number }
  | { id: number; type: 'stats'; window: StatsWindowName; reset: boolean }
  | { id: number; type: 'stop' };

/** The answer to `start`: where clients connect. */
export interface StartedCoordinator {
  url: string;
  coordinatorId: string;
}

/** One phase of a round as the coordinator went through it (training, the five secure ones). */
export interface PhaseTiming {
  phase: string;
  ms: number;
}

/**
 * The answer to `round`: the history line the coordinator recorded and its phase times; or,
 * when no round ended in time, `entry` null and the phases reached so far (the last one is
 * where it was stuck).
 */
export interface RoundReport {
  entry: RoundHistoryEntry | null;
  timedOut: boolean;
  phases: PhaseTiming[];
}

/** Event-loop delay percentiles in ms, the sampling interval already taken off. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  mean: number;
  samples: number;
}

/**
 * The coordinator process's costs over a window (since the last `stats` with reset), plus
 * its memory right now, after a full garbage collection (what it keeps, not what it churns).
 */
export interface CoordinatorStats {
  windowMs: number;
  /** Registered clients right now. */
  connected: number;
  loop: LoopDelay;
  /** process.cpuUsage, user + system, over the window. */
  cpuMs: number;
  /** Highest RSS and heap used sampled (every 100 ms) over the window. */
  peakRssMB: number;
  peakHeapMB: number;
  /** After global.gc(), at the end of the window. */
  rssMB: number;
  heapUsedMB: number;
  /** V8's heap size limit for this process (where it would run out of heap). */
  heapLimitMB: number;
  /** socket.io payload bytes over the window, from the coordinator's own /metrics counters. */
  bytesIn: number | null;
  bytesOut: number | null;
}

/** What the coordinator process sends back. */
export type LoadResponse =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
