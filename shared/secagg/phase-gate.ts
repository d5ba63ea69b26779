import { CohortError } from '../errors';
import { SECAGG_PHASES } from './client';

/** The phase whose responses the coordinator collects now, or the round's end state. */
export type SecAggServerPhase =
  | 'advertiseKeys'
  | 'shareKeys'
  | 'maskedInput'
  | 'consistencyCheck'
  | 'unmasking'
  | 'done'
  | 'aborted';

const ORDER: readonly SecAggServerPhase[] = [...SECAGG_PHASES, 'done'];

/**
 * The coordinator's admission control for one round: which phase is open, who may still
 * answer it, who has. It turns every way a response can be unwelcome into a distinct error
 * (not in the cohort, phase not open yet, phase closed, sender already declared dropped,
 * duplicate, round aborted) and makes sure a response whose validation outlives its phase
 * (async signature checks) changes nothing.
 */
export class PhaseGate {
  private state: SecAggServerPhase = 'advertiseKeys';
  private expected: Set<string>;
  private readonly responded = new Set<string>();
  private readonly inFlight = new Set<string>();
  private finishing = false;

  constructor(
    private readonly cohort: ReadonlySet<string>,
    private threshold: number,
  ) {
    this.expected = new Set(cohort);
  }

  /** Current phase. */
  get phase(): SecAggServerPhase {
    return this.state;
  }

  /** Sets the survivor minimum once it is known (it follows from the participant count). */
  setThreshold(threshold: number): void {
    this.threshold = threshold;
  }

  /** How many clients have answered the current phase. */
  get answered(): number {
    return this.responded.size;
  }

  /** Clients that still owe a response in the current phase, sorted. */
  awaiting(): string[] {
    return [...this.expected].filter((id) => !this.responded.has(id)).sort();
  }

  /**
   * Admits a response to `phase`, runs `validate` (which may be async) and, only if the phase
   * is still open afterwards, applies the state change it returns. The client is marked in
   * flight meanwhile, so a concurrent duplicate is refused.
   */
  async accept(
    phase: SecAggServerPhase,
    clientId: string,
    validate: () => (() => void) | Promise<() => void>,
  ): Promise<void> {
    this.admit(phase, clientId);
    this.inFlight.add(clientId);
    try {
      const commit = await validate();
      if (this.state !== phase || this.finishing) {
        throw new CohortError(
          'SECAGG_LATE',
          `${phase} from ${clientId} ended after the phase closed`,
        );
      }
      commit();
      this.responded.add(clientId);
    } finally {
      this.inFlight.delete(clientId);
    }
  }

  /** Closes `phase`: its responders, sorted; aborts with SECAGG_BELOW_THRESHOLD under t. */
  close(phase: SecAggServerPhase): string[] {
    this.assertAt(phase);
    const responders = [...this.responded].sort();
    if (responders.length < this.threshold) {
      this.abort();
      throw new CohortError(
        'SECAGG_BELOW_THRESHOLD',
        `${responders.length} clients completed ${phase}, threshold is ${this.threshold}`,
      );
    }
    return responders;
  }

  /**
   * Takes back answers of the open `phase` that turned out not to count (cluster mode: masked
   * inputs whose gateway never delivered the partial sum holding them): those clients close
   * the phase as dropped.
   */
  retract(phase: SecAggServerPhase, ids: Iterable<string>): void {
    this.assertAt(phase);
    for (const id of ids) this.responded.delete(id);
  }

  /** Opens `phase` for exactly `ids`. */
  open(phase: SecAggServerPhase, ids: readonly string[]): void {
    this.state = phase;
    this.expected = new Set(ids);
    this.responded.clear();
  }

  /** Stops admitting unmasking responses while the result is computed; refuses a second call. */
  beginFinish(): void {
    this.assertAt('unmasking');
    if (this.finishing) throw new CohortError('SECAGG_REPLAY', 'finish() already called');
    this.finishing = true;
  }

  /** Marks the round complete. */
  markDone(): void {
    this.state = 'done';
    this.expected = new Set();
  }

  /** Marks the round aborted (a completed round stays completed). */
  abort(): void {
    if (this.state === 'done') return;
    this.state = 'aborted';
    this.expected = new Set();
  }

  private assertAt(phase: SecAggServerPhase): void {
    if (this.state === 'aborted') throw new CohortError('ROUND_ABORTED', 'the round was aborted');
    if (this.state !== phase || (this.finishing && phase !== 'unmasking')) {
      throw new CohortError('SECAGG_REPLAY', `cannot close ${phase} while at ${this.state}`);
    }
  }

  private admit(phase: SecAggServerPhase, clientId: string): void {
    if (this.state === 'aborted') throw new CohortError('ROUND_ABORTED', 'the round was aborted');
    if (!this.cohort.has(clientId)) {
      throw new CohortError('UPDATE_NOT_SELECTED', `${clientId} is not in this round's cohort`);
    }
    const now = ORDER.indexOf(this.state);
    const wanted = ORDER.indexOf(phase);
    if (wanted < now || this.finishing) {
      throw new CohortError('SECAGG_LATE', `${phase} from ${clientId} after the phase closed`);
    }
    if (wanted > now) {
      throw new CohortError('SECAGG_REPLAY', `${phase} from ${clientId} before it opened`);
    }
    if (!this.expected.has(clientId)) {
      throw new CohortError('SECAGG_LATE', `${clientId} was already declared dropped`);
    }
    if (this.responded.has(clientId) || this.inFlight.has(clientId)) {
      throw new CohortError('UPDATE_DUPLICATE', `second ${phase} response from ${clientId}`);
    }
  }
}
