import type { ControlAction, DashboardSnapshot } from '../../shared/protocol/web';

/** One point of the accuracy chart: a completed round's test accuracy (0–1) and test loss. */
export interface ChartPoint {
  round: number;
  accuracy: number | null;
  loss: number | null;
}

/** The last control request and how it ended. */
export interface ControlOutcome {
  action: ControlAction;
  ok: boolean;
  /** HTTP status; 0 when no answer came. */
  status: number;
  /** The WebError code of a refusal, null on success. */
  code: string | null;
  message: string;
}

/**
 * What the page exposes as `window.cohortDashboard` for tests and for anyone debugging it
 * from the console: plain JSON (page.evaluate can return it whole), never a live object.
 */
export interface DashboardHook {
  /** Snapshots received over the socket. */
  snapshots: number;
  /** Successful GET /api/state loads. */
  httpLoads: number;
  /** The snapshot on screen. */
  last: DashboardSnapshot | null;
  /** What the chart plots now, oldest round first. */
  chartPoints: ChartPoint[];
  /** Whether the live socket is connected. */
  live: boolean;
  lastControl: ControlOutcome | null;
  /** Why the page cannot show the state (refused token, coordinator gone), or null. */
  error: { code: string; message: string } | null;
}

declare global {
  interface Window {
    cohortDashboard: DashboardHook;
  }
}

/** Installs a fresh hook on window and returns it; the page mutates its fields in place. */
export function installHook(): DashboardHook {
  const hook: DashboardHook = {
    snapshots: 0,
    httpLoads: 0,
    last: null,
    chartPoints: [],
    live: false,
    lastControl: null,
    error: null,
  };
  window.cohortDashboard = hook;
  return hook;
}
