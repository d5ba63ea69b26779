import { isCohortError } from '../../shared/errors';
import type { BackendMeasurement } from '../backend/choose-backend';

/** Where the tab is in its life, as the page and `window.cohortJoin` show it. */
export type JoinPhaseState =
  | 'loading'
  | 'choosing-data'
  | 'choosing-backend'
  | 'connecting'
  | 'idle'
  | 'training'
  | 'submitting'
  | 'evaluating'
  | 'left'
  | 'done'
  | 'error';

/** A failure the page shows: a stable code (Cohort's, or the page's own) and a sentence. */
export interface PageError {
  code: string;
  message: string;
}

/** A round summary as the page keeps it. */
export interface SummaryRecord {
  round: number;
  status: 'completed' | 'failed';
  testAccuracy: number | null;
  participants: number;
}

/**
 * Everything the page knows, as one plain JSON-serialisable object published as
 * `window.cohortJoin`: tests (and curious users, from the console) read the tab's state
 * without scraping the DOM, and the DOM is rendered from the same object so they agree.
 */
export interface JoinState {
  state: JoinPhaseState;
  backend: string | null;
  backendReason: string | null;
  backendMeasurements: BackendMeasurement[];
  identityKind: 'webcrypto' | 'tweetnacl' | null;
  clientId: string | null;
  experiment: string | null;
  task: string | null;
  secureAggregation: boolean | null;
  connection: 'offline' | 'connecting' | 'connected' | 'disconnected' | 'left';
  round: number | null;
  phase: string | null;
  /** Round summaries received with status 'completed'. */
  roundsCompleted: number;
  summaries: SummaryRecord[];
  /** Bytes this tab sent, by round number ("0": before its first round, i.e. registration). */
  bytesSentByRound: Record<string, number>;
  error: PageError | null;
  dataSource: 'sample' | 'folder' | 'files' | null;
  trainExamples: number;
  testExamples: number;
  minParticipants: number;
  /** How many times the tab (re)joined: 1 after the first connection. */
  joins: number;
  /** Mean batch loss of the current epoch of local training. */
  localLoss: number | null;
  /** Accuracy of the last received global model on the local test split (computed here). */
  localAccuracy: number | null;
}

declare global {
  interface Window {
    cohortJoin: JoinState;
  }
}

/** The initial state, before anything has loaded. */
export function initialJoinState(): JoinState {
  return {
    state: 'loading',
    backend: null,
    backendReason: null,
    backendMeasurements: [],
    identityKind: null,
    clientId: null,
    experiment: null,
    task: null,
    secureAggregation: null,
    connection: 'offline',
    round: null,
    phase: null,
    roundsCompleted: 0,
    summaries: [],
    bytesSentByRound: {},
    error: null,
    dataSource: null,
    trainExamples: 0,
    testExamples: 0,
    minParticipants: 5,
    joins: 0,
    localLoss: null,
    localAccuracy: null,
  };
}

/**
 * The one place state changes: merges `patch` into `window.cohortJoin` and tells the view,
 * so the published object and the page never drift apart.
 */
export class JoinStore {
  readonly current: JoinState;
  private readonly listeners: Array<(state: JoinState) => void> = [];

  constructor() {
    this.current = initialJoinState();
    window.cohortJoin = this.current;
  }

  /**
   * Applies `patch` and re-renders. The error state sticks until a patch clears the error
   * (`error: null`), so a late event of a failed session cannot paper over the failure.
   */
  update(patch: Partial<JoinState>): void {
    const next = { ...patch };
    const leavesError = next.state !== undefined && next.state !== 'error';
    if (this.current.state === 'error' && leavesError && next.error !== null) delete next.state;
    Object.assign(this.current, next);
    for (const listener of this.listeners) listener(this.current);
  }

  /** Moves to the error state with `error` (what the page then shows). */
  fail(error: unknown): void {
    this.update({ state: 'error', error: toPageError(error) });
  }

  subscribe(listener: (state: JoinState) => void): void {
    this.listeners.push(listener);
    listener(this.current);
  }
}

/** Any thrown value as a {@link PageError}: a CohortError keeps its code, the rest is INTERNAL. */
export function toPageError(error: unknown): PageError {
  if (isCohortError(error)) return { code: error.code, message: error.reason };
  if (isPageError(error)) return { code: error.code, message: error.message };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

function isPageError(value: unknown): value is PageError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

/** An error with a page-specific code (not one of Cohort's published codes). */
export class PageFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PageFailure';
  }
}
