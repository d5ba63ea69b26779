/**
 * The contract between the benchmark harness and its suites. A suite only measures and returns
 * rows; printing, file output and machine description live in the harness, so adding a suite
 * (e.g. secure aggregation) is one file plus one line in suites.ts.
 */

/** One cell value: numbers are formatted by the harness, null prints as '-'. */
export type CellValue = string | number | null;

/** One result line of a suite, keyed by column key. */
export type BenchRow = Record<string, CellValue>;

/** A table column: `key` in each row, `label` as printed (with its unit). */
export interface BenchColumn {
  key: string;
  label: string;
}

/** What a suite hands back: the table, plus notes that explain how to read it. */
export interface SuiteResult {
  columns: BenchColumn[];
  rows: BenchRow[];
  /** Printed under the table and stored in the JSON (data used, caveats, skipped parts). */
  notes: string[];
  /** Suite-specific facts for the JSON file (e.g. the tfjs backends it used). */
  details?: Record<string, unknown>;
}

/** What the harness gives a suite. */
export interface SuiteContext {
  /** A much shorter run: fewer images and iterations, for a smoke check. */
  quick: boolean;
  /** Every case, where a suite trims its default grid. */
  full: boolean;
  /**
   * `--threads N` (default: all cores): the thread count given to the PyTorch reference, and
   * recorded in every suite's JSON. Cohort's own training is single-threaded today.
   */
  threads: number;
  /** The repository root (holds package.json), for finding ../shared. */
  repoRoot: string;
  /** Writes one progress line (to stderr, so stdout stays the table). */
  progress(line: string): void;
}

/** A named benchmark that `npm run bench -- <name>` runs. */
export interface BenchSuite {
  name: string;
  /** One line for `--help` and the README. */
  description: string;
  run(context: SuiteContext): Promise<SuiteResult>;
}
