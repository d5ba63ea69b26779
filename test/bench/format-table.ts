/**
 * Plain-text tables for the terminal and for pasting into the README: columns padded to their
 * widest cell, numbers right-aligned with a precision that suits their size.
 */
import type { BenchColumn, BenchRow, CellValue } from './bench-types';

/** A number with ~3 significant digits (integers >= 1000 grouped), '-' for null. */
export function formatCell(value: CellValue): string {
  if (value === null) return '-';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (Number.isInteger(value) || magnitude >= 100) {
    return Math.round(value).toLocaleString('en-US');
  }
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  if (magnitude === 0) return '0';
  return value.toPrecision(2);
}

/** The rows as an aligned table with a header and a separator line (markdown-compatible). */
export function formatTable(columns: BenchColumn[], rows: BenchRow[]): string {
  const cells = rows.map((row) => columns.map((c) => formatCell(row[c.key] ?? null)));
  const numeric = columns.map((c) => rows.every((row) => typeof row[c.key] !== 'string'));
  const widths = columns.map((c, i) =>
    Math.max(c.label.length, 3, ...cells.map((line) => line[i]!.length)),
  );
  const pad = (text: string, i: number): string =>
    numeric[i] ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
  const line = (parts: string[]): string => `| ${parts.join(' | ')} |`;
  return [
    line(columns.map((c, i) => pad(c.label, i))),
    line(widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)))),
    ...cells.map((parts) => line(parts.map((text, i) => pad(text, i)))),
  ].join('\n');
}
