import type { MutationModule } from './modules';

/** One mutant's outcome, with a location a person can open. */
export interface MutantOutcome {
  file: string;
  line: number;
  column: number;
  mutator: string;
  replacement: string;
  /** StrykerJS's status: Killed, Survived, NoCoverage, Timeout, CompileError, RuntimeError, Ignored. */
  status: string;
  /** Why it was ignored (the `Stryker disable` comment's reason), or what killed it. */
  reason: string;
}

/** A module's result: counts, score and what is left to kill or justify. */
export interface ModuleScore {
  module: string;
  target: number;
  killed: number;
  survived: number;
  noCoverage: number;
  timeout: number;
  /** Mutants that did not type-check (the TypeScript checker): not counted either way. */
  compileErrors: number;
  /** Mutants marked equivalent in the source, with their reasons. */
  equivalent: number;
  /** StrykerJS's mutation score: detected / (detected + undetected), in %; null without mutants. */
  score: number | null;
  seconds: number;
  /** `file:line:column mutator -> replacement` of every surviving or uncovered mutant. */
  survivors: string[];
  /** `file:line mutator: reason` of every mutant marked equivalent. */
  equivalents: string[];
}

/**
 * Scores one module the way StrykerJS does: a killed or timed-out mutant is detected, a
 * surviving or uncovered one is not; compile errors and ignored (equivalent) mutants are out.
 */
export function summarizeMutants(
  module: MutationModule,
  outcomes: readonly MutantOutcome[],
  seconds: number,
): ModuleScore {
  const count = (status: string) => outcomes.filter((o) => o.status === status).length;
  const killed = count('Killed');
  const timeout = count('Timeout');
  const survived = count('Survived');
  const noCoverage = count('NoCoverage');
  const detected = killed + timeout;
  const total = detected + survived + noCoverage;
  const where = (o: MutantOutcome) => `${o.file}:${o.line}:${o.column}`;
  return {
    module: module.name,
    target: module.target,
    killed,
    survived,
    noCoverage,
    timeout,
    compileErrors: count('CompileError'),
    equivalent: count('Ignored'),
    score: total === 0 ? null : Math.round((1000 * detected) / total) / 10,
    seconds: Math.round(seconds),
    survivors: outcomes
      .filter((o) => o.status === 'Survived' || o.status === 'NoCoverage')
      .map((o) => `${where(o)} ${o.mutator} -> ${JSON.stringify(o.replacement)} (${o.status})`),
    equivalents: outcomes
      .filter((o) => o.status === 'Ignored')
      .map((o) => `${where(o)} ${o.mutator}: ${o.reason}`),
  };
}

/** The Markdown table the README's Testing section shows. */
export function formatScoreTable(scores: readonly ModuleScore[]): string {
  const rows = scores.map((s) =>
    [
      `\`${s.module}\``,
      s.score === null ? 'n/a' : `${s.score.toFixed(1)}%`,
      `${s.target}%`,
      s.killed + s.timeout,
      s.survived + s.noCoverage,
      s.equivalent,
      s.compileErrors,
      `${Math.round(s.seconds / 60)} min`,
    ].join(' | '),
  );
  return [
    '| module | score | target | killed | survived | equivalent | compile errors | time |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}
