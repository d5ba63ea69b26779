import { CohortError } from '../errors';
import type { IdentityKeyPair } from '../identity';
import type { FitIns } from '../protocol/messages';
import type { SecAggPhase } from '../secagg';
import { SecAggClientSession } from '../secagg';
import type { SecureSubmission } from './client-session';
import type { LocalFitResult } from './trainer';

interface PendingRound {
  session: SecAggClientSession;
  delta: Float32Array;
  numExamples: number;
}

/**
 * The client's side of secure aggregation: keeps a round's update after training and answers
 * the five phases through an honest SecAggClientSession, which checks everything the
 * coordinator sends before revealing anything. Only the current round is held; a new round,
 * a cancellation or the end of unmasking forgets (and wipes) the previous one.
 */
export class SecAggSubmission implements SecureSubmission {
  private readonly rounds = new Map<string, PendingRound>();
  /** Recently ended rounds, so a repeated request is named a replay rather than unknown. */
  private readonly ended: string[] = [];

  constructor(
    private readonly identity: IdentityKeyPair,
    private readonly knownIdentityKeys?: Iterable<Uint8Array>,
  ) {}

  prepare(roundId: string, fit: FitIns, result: LocalFitResult): void {
    for (const old of [...this.rounds.keys()]) this.forget(old);
    this.rounds.set(roundId, {
      session: new SecAggClientSession({
        identity: this.identity,
        roundId,
        modelHash: fit.model.modelHash,
        ...(this.knownIdentityKeys ? { knownIdentityKeys: this.knownIdentityKeys } : {}),
      }),
      delta: result.delta,
      numExamples: result.numExamples,
    });
  }

  async handle(phase: string, roundId: string, body: unknown): Promise<unknown> {
    const pending = this.rounds.get(roundId);
    if (!pending) {
      if (this.ended.includes(roundId)) {
        throw new CohortError('SECAGG_REPLAY', `secure round ${roundId} already ended here`);
      }
      throw new CohortError('UPDATE_STALE', `no secure round ${roundId} in progress here`);
    }
    if (!isPhase(phase)) {
      throw new CohortError('MESSAGE_INVALID', `unknown secure-aggregation phase "${phase}"`);
    }
    try {
      const response = await pending.session.answer(phase, body, {
        update: pending.delta,
        exampleCount: pending.numExamples,
      });
      if (phase === 'unmasking') this.forget(roundId);
      return response;
    } catch (error) {
      // The session refuses for good after any error; drop the update with it.
      this.forget(roundId);
      throw error;
    }
  }

  forget(roundId: string): void {
    const pending = this.rounds.get(roundId);
    if (!pending) return;
    pending.delta.fill(0);
    this.rounds.delete(roundId);
    this.ended.push(roundId);
    if (this.ended.length > 32) this.ended.shift();
  }
}

const PHASES: readonly string[] = [
  'advertiseKeys',
  'shareKeys',
  'maskedInput',
  'consistencyCheck',
  'unmasking',
] satisfies SecAggPhase[];

function isPhase(phase: string): phase is SecAggPhase {
  return PHASES.includes(phase);
}
