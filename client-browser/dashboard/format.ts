/**
 * How the dashboard writes numbers: one place, so the rounds table, the header and the chart
 * tooltips agree (accuracy as %, durations in s, bytes in KB/MB, losses to 4 digits).
 */

/** Shown wherever a value is missing (a failed round has no loss). */
export const MISSING = '–';

/** 0.9234 → "92.34%". */
export function formatPercent(fraction: number | null, digits = 2): string {
  if (fraction === null || !Number.isFinite(fraction)) return MISSING;
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A loss to 4 significant decimals. */
export function formatLoss(loss: number | null): string {
  if (loss === null || !Number.isFinite(loss)) return MISSING;
  return loss.toFixed(4);
}

/** 12345 ms → "12.3 s"; under a second in ms; long rounds in min. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return MISSING;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${(seconds / 60).toFixed(1)} min`;
}

/** Bytes in B, KB, MB or GB (powers of 1024). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return MISSING;
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit] ?? 'GB'}`;
}

/** An ISO time as the local clock time (and date when not today). */
export function formatClock(iso: string, now = Date.now()): string {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return iso;
  const date = new Date(time);
  const sameDay = new Date(now).toDateString() === date.toDateString();
  return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
}

/** How long ago an ISO time was: "just now", "42 s ago", "3 min ago", "2 h ago". */
export function formatAgo(iso: string, now = Date.now()): string {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return iso;
  const seconds = Math.max(0, Math.round((now - time) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 90) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min ago`;
  return `${Math.round(minutes / 60)} h ago`;
}
